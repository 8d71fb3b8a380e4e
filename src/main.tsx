import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './ui/App';
import './ui/style.css';
import { useStore } from './ui/store';

// the e2e tests read the store (loss values, run states) from the dev build; production has no hook
if (import.meta.env.DEV) (window as unknown as { __playground: typeof useStore }).__playground = useStore;

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

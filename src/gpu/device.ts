// Adapter and device acquisition. Works in a window, a dedicated worker, and any host that
// provides `navigator.gpu` (headless Chromium on SwiftShader in tests, Dawn in Node).

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  features: string[];
  limits: Record<string, number>;
}

export class WebGpuUnavailableError extends Error {
  constructor(
    message: string,
    readonly reason: 'no-navigator-gpu' | 'no-adapter' | 'device-failed',
  ) {
    super(message);
    this.name = 'WebGpuUnavailableError';
  }
}

/** Limits we ask for: as much as the adapter offers of the ones that size our buffers. */
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxStorageBuffersPerShaderStage',
] as const;

export function summarizeAdapter(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  // GPUSupportedLimits is not a plain object: walk its prototype's getters.
  const proto = Object.getPrototypeOf(adapter.limits) as object;
  for (const key of Object.getOwnPropertyNames(proto)) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') limits[key] = v;
  }
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter: (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
    features: [...adapter.features].sort(),
    limits,
  };
}

export interface AcquiredDevice {
  adapter: GPUAdapter;
  device: GPUDevice;
  summary: AdapterSummary;
}

export async function acquireDevice(gpu: GPU | undefined = globalThis.navigator?.gpu): Promise<AcquiredDevice> {
  if (!gpu) {
    throw new WebGpuUnavailableError(
      'This browser does not expose WebGPU (navigator.gpu is missing). Use a current Chrome or Edge ' +
        '(113 or later) on a page served over https or from localhost; on Linux start Chrome with ' +
        '--enable-unsafe-webgpu --enable-features=Vulkan, or enable chrome://flags/#enable-unsafe-webgpu.',
      'no-navigator-gpu',
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new WebGpuUnavailableError(
      'WebGPU is present but no GPU adapter was found. The GPU may be blocklisted or its driver too old: ' +
        'update the graphics driver, check chrome://gpu, or enable chrome://flags/#enable-unsafe-webgpu.',
      'no-adapter',
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const key of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[key];
    if (typeof v === 'number') requiredLimits[key] = v;
  }
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  } catch (e) {
    throw new WebGpuUnavailableError(`The GPU adapter refused to create a device: ${String(e)}`, 'device-failed');
  }
  return { adapter, device, summary: summarizeAdapter(adapter) };
}

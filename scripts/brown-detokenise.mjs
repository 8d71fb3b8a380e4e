// The Brown corpus's tokens back into readable text. Shared by scripts/build-datasets.mjs (the
// topic dataset) and scripts/pretrain-vocab.mjs, which must produce the very same sentences to
// leave the topic dataset's sentences out of pretraining.
const noSpaceBefore = new Set([',', '.', ';', ':', '?', '!', ')', ']', '}', "''", "'", '%']);
const noSpaceAfter = new Set(['``', '(', '[', '{', '$', '`']);
export function detokenise(tokens) {
  // Brown doubles some clause-final marks (";/. ;/.", "?/. ?/."), and splits sentences at semicolons
  const words = tokens.filter((w, i) => !((w === ';' || w === '?') && tokens[i + 1] === w));
  if (words[words.length - 1] === ';') words[words.length - 1] = '.';
  let out = '';
  let glueNext = true;
  for (const word of words) {
    const text = word === '``' || word === "''" ? '"' : word === '`' ? "'" : word;
    if (!glueNext && !noSpaceBefore.has(word)) out += ' ';
    out += text;
    glueNext = noSpaceAfter.has(word);
  }
  return out.replace(/ -- /g, ' — ').replace(/--/g, '—');
}

/**
 * Max over contiguous groups of a row (sub-center heads): one thread per (row, group). The
 * comparison is strict, so the first maximum wins ties, as on the CPU.
 */
export const groupMaxBody = /* wgsl */ `
  let start = gid * p.size;
  var best = x[start];
  var at = start;
  for (var k = 1u; k < p.size; k = k + 1u) {
    let v = x[start + k];
    if (v > best) { best = v; at = start + k; }
  }
  o[gid] = best;
  index[gid] = i32(at);`;

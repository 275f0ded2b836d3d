/**
 * Max over contiguous groups of a row (sub-center heads): one thread per (row, group). The
 * comparison is strict, so the first maximum wins ties, as on the CPU (the index; the backward
 * below routes the gradient to every tied element).
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

/** Its backward, one thread per element: the group's gradient where the element equals the group's max. */
export const groupMaxBackwardBody = /* wgsl */ `
  let grp = gid / p.size;
  dx[gid] = select(0.0, g[grp], x[gid] == mx[grp]);`;

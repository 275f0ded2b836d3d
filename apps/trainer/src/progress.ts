/** A one-line progress bar on a terminal; periodic plain lines elsewhere (CI logs, pipes). */
export class Progress {
  private readonly started = performance.now();
  private lastPrint = 0;
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly total: number, private readonly first: number) {}

  update(step: number, loss: number, lr: number, imagesPerSecond: number): void {
    const now = performance.now();
    if (now - this.lastPrint < (this.tty ? 100 : 10_000) && step < this.total) return;
    this.lastPrint = now;
    const done = step - this.first;
    const perStep = (now - this.started) / Math.max(1, done);
    const eta = ((this.total - step) * perStep) / 1000;
    const width = 24;
    const filled = Math.round((width * step) / this.total);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const line = `${bar} step ${step}/${this.total} loss ${loss.toFixed(4)} lr ${lr.toExponential(2)} ${imagesPerSecond.toFixed(0)} img/s ETA ${formatSeconds(eta)}`;
    process.stderr.write(this.tty ? `\r${line}\x1b[K` : `${line}\n`);
  }

  done(): void {
    if (this.tty) process.stderr.write('\n');
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

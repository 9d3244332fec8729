/**
 * The lines a logs tab keeps: a bounded buffer, so a container printing
 * megabytes cannot make the browser tab grow without end.
 */

export interface ILogEntry {
  stream: 'stdout' | 'stderr';
  data: string;
  time: string;
}

// CSI sequences (colours, cursor moves) and OSC sequences (titles, links).
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

/** What a view must do to show the buffer again: drop lines at the top, add lines at the bottom. */
export interface ILogUpdate {
  removeFromTop: number;
  append: ILogEntry[];
}

export class LogBuffer {
  constructor(readonly maxLines = 5000) {}

  private _lines: ILogEntry[] = [];
  /** Lines dropped from the front to stay within maxLines (or cleared). */
  private _dropped = 0;
  /** Absolute indices of the lines the view shows: [start, end). */
  private _shown = { start: 0, end: 0 };

  get lines(): readonly ILogEntry[] {
    return this._lines;
  }

  get dropped(): number {
    return this._dropped;
  }

  push(entry: ILogEntry): void {
    this._lines.push({ ...entry, data: stripAnsi(entry.data) });
    const excess = this._lines.length - this.maxLines;
    if (excess > 0) {
      this._lines.splice(0, excess);
      this._dropped += excess;
    }
  }

  clear(): void {
    this._dropped += this._lines.length;
    this._lines = [];
  }

  /**
   * The changes since the last call, so a view appends new lines and removes
   * dropped ones instead of drawing thousands of lines again each time.
   */
  update(): ILogUpdate {
    const first = this._dropped;
    const end = first + this._lines.length;
    const { start, end: shownEnd } = this._shown;
    const removeFromTop = Math.max(0, Math.min(first, shownEnd) - start);
    const append = this._lines.slice(Math.max(shownEnd, first) - first);
    this._shown = { start: first, end };
    return { removeFromTop, append };
  }
}

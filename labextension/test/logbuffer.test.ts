import { describe, expect, it } from 'vitest';

import { ILogEntry, LogBuffer, stripAnsi } from '../src/logbuffer';

function line(n: number, stream: 'stdout' | 'stderr' = 'stdout'): ILogEntry {
  return { stream, data: `line ${n}\n`, time: `t${n}` };
}

it('strips colours and terminal titles but keeps the text', () => {
  expect(stripAnsi('\x1b[1;31merror\x1b[0m: \x1b]0;title\x07done')).toBe('error: done');
});

describe('LogBuffer', () => {
  it('keeps the newest lines up to its bound', () => {
    const buffer = new LogBuffer(3);
    for (let n = 1; n <= 5; n++) {
      buffer.push(line(n));
    }
    expect(buffer.lines.map(l => l.data)).toEqual(['line 3\n', 'line 4\n', 'line 5\n']);
    expect(buffer.dropped).toBe(2);
  });

  it('tells a view what to add and remove since it last drew', () => {
    const buffer = new LogBuffer(4);
    buffer.push(line(1));
    buffer.push(line(2, 'stderr'));
    expect(buffer.update()).toEqual({ removeFromTop: 0, append: [line(1), line(2, 'stderr')] });
    expect(buffer.update()).toEqual({ removeFromTop: 0, append: [] });

    for (let n = 3; n <= 5; n++) {
      buffer.push(line(n));
    }
    // 5 lines into 4: line 1 went, 3 to 5 are new.
    expect(buffer.update()).toEqual({ removeFromTop: 1, append: [line(3), line(4), line(5)] });

    for (let n = 6; n <= 15; n++) {
      buffer.push(line(n));
    }
    // Everything shown went away; only the last 4 are drawn.
    expect(buffer.update()).toEqual({ removeFromTop: 4, append: [line(12), line(13), line(14), line(15)] });
  });

  it('clears what the view shows', () => {
    const buffer = new LogBuffer();
    buffer.push(line(1));
    buffer.update();
    buffer.clear();
    buffer.push(line(2));
    expect(buffer.update()).toEqual({ removeFromTop: 1, append: [line(2)] });
  });
});

import { describe, expect, it } from 'vitest';

import { layerFraction, PullMessage, PullProgress } from '../src/pull';

function layer(id: string, status: string, current: number, total: number | null): PullMessage {
  return { type: 'progress', kind: 'layer', id, status, current, total, message: '', time: 0 };
}

describe('PullProgress', () => {
  it('follows each layer through the states the CLI shows', () => {
    const pull = new PullProgress('busybox');
    pull.apply({
      type: 'progress',
      kind: 'status',
      id: 'docker.io/library/busybox:latest',
      status: 'resolving',
      current: 0,
      total: null,
      message: 'latest: Pulling from library/busybox',
      time: 0
    });
    pull.apply(layer('aaaaaaaaaaaa', 'waiting', 0, 1000));
    pull.apply(layer('bbbbbbbbbbbb', 'waiting', 0, 3000));
    expect(pull.fraction).toBe(0);
    expect(pull.message).toBe('latest: Pulling from library/busybox');

    pull.apply(layer('aaaaaaaaaaaa', 'exists', 1000, 1000));
    pull.apply(layer('bbbbbbbbbbbb', 'downloading', 1500, 3000));
    expect(pull.layers.map(l => l.id)).toEqual(['aaaaaaaaaaaa', 'bbbbbbbbbbbb']);
    expect(pull.bytes).toEqual({ current: 2500, total: 4000 });
    expect(pull.fraction).toBeCloseTo(0.75);
    expect(pull.state).toBe('pulling');

    pull.apply(layer('bbbbbbbbbbbb', 'extracting', 3000, 3000));
    pull.apply(layer('bbbbbbbbbbbb', 'done', 3000, 3000));
    pull.apply({ type: 'done', image: { Id: 'sha256:cafe', RepoTags: ['busybox:latest'] } });
    pull.closed();
    expect(pull.state).toBe('done');
    expect(pull.fraction).toBe(1);
    expect(pull.image?.Id).toBe('sha256:cafe');
  });

  it('keeps the server error', () => {
    const pull = new PullProgress('nope:1');
    pull.apply({ type: 'error', status: 404, message: "image 'nope:1' not found" });
    pull.closed();
    expect(pull.state).toBe('error');
    expect(pull.error).toBe("image 'nope:1' not found");
  });

  it('calls a socket closed before the end an error', () => {
    const pull = new PullProgress('busybox');
    pull.apply(layer('aaaaaaaaaaaa', 'downloading', 10, 100));
    pull.closed();
    expect(pull.state).toBe('error');
    expect(pull.error).toContain('busybox');
  });
});

it('gives a layer of unknown size no progress until it settles', () => {
  expect(layerFraction({ id: 'x', status: 'downloading', current: 50, total: null, message: '' })).toBe(0);
  expect(layerFraction({ id: 'x', status: 'downloading', current: 50, total: 200, message: '' })).toBe(0.25);
  expect(layerFraction({ id: 'x', status: 'error', current: 50, total: 200, message: '' })).toBe(1);
});

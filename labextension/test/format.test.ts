import { describe, expect, it } from 'vitest';

import {
  barPercent,
  humanBinarySize,
  humanSize,
  IContainer,
  imageTags,
  servicePorts,
  shortId,
  usageText
} from '../src/format';

function container(overrides: Partial<IContainer> = {}): IContainer {
  return {
    Id: 'f'.repeat(64),
    Name: '/web',
    Created: '2024-05-01T10:00:00.123456789Z',
    Config: { Image: 'busybox' },
    State: { Status: 'running' },
    ...overrides
  };
}

describe('servicePorts', () => {
  it('lists exposed and published TCP ports once each, sorted, with proxy links', () => {
    const ports = servicePorts(
      container({
        Config: { Image: 'busybox', ExposedPorts: { '8080/tcp': {}, '53/udp': {}, '80/tcp': {} } },
        NetworkSettings: { Ports: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '18080' }], '9000/tcp': null } }
      }),
      '/user/a%40b/containers/proxy/'
    );
    expect(ports).toEqual([
      { port: 80, published: [], url: '/user/a%40b/containers/proxy/web/80/' },
      { port: 8080, published: ['127.0.0.1:18080'], url: '/user/a%40b/containers/proxy/web/8080/' },
      { port: 9000, published: [], url: '/user/a%40b/containers/proxy/web/9000/' }
    ]);
  });

  it('has nothing for a container without ports', () => {
    expect(servicePorts(container(), '/containers/proxy')).toEqual([]);
  });

  it('shows an unspecified host address as docker does', () => {
    const [port] = servicePorts(
      container({ NetworkSettings: { Ports: { '3306/tcp': [{ HostIp: '', HostPort: '3306' }] } } }),
      '/p'
    );
    expect(port.published).toEqual(['0.0.0.0:3306']);
  });
});

describe('sizes, as the CLI prints them', () => {
  it.each([
    [0, '0B'],
    [999, '999B'],
    [1000, '1kB'],
    [1234567, '1.23MB'],
    [123456789, '123MB'],
    [5.5e9, '5.5GB']
  ])('humanSize(%d) is %s', (bytes, text) => {
    expect(humanSize(bytes)).toBe(text);
  });

  it.each([
    [512, '512B'],
    [1536, '1.5KiB'],
    [12845056, '12.25MiB'],
    [3 * 1024 ** 3, '3GiB']
  ])('humanBinarySize(%d) is %s', (bytes, text) => {
    expect(humanBinarySize(bytes)).toBe(text);
  });
});

describe('images', () => {
  it('names an image by its tags, else by its digests, else <none>', () => {
    expect(imageTags({ Id: 'sha256:1', RepoTags: ['busybox:latest', 'bb:1'] })).toEqual(['busybox:latest', 'bb:1']);
    expect(imageTags({ Id: 'sha256:1', RepoTags: [], RepoDigests: ['busybox@sha256:abc'] })).toEqual(['busybox:<none>']);
    expect(imageTags({ Id: 'sha256:1' })).toEqual(['<none>:<none>']);
  });

  it('shortens IDs as docker does', () => {
    expect(shortId('sha256:0123456789abcdef0123')).toBe('0123456789ab');
  });
});

it('clamps bar widths', () => {
  expect([barPercent(-3), barPercent(42.5), barPercent(250), barPercent(NaN), barPercent(undefined)]).toEqual([
    0, 42.5, 100, 0, 0
  ]);
});

it('labels usage as docker stats does, with -- for figures the host lacks', () => {
  const stats = { id: 'a', cpu_percent: 3.14159, memory_usage: 1536, memory_limit: 3 * 1024 ** 3, memory_percent: 0, pids: 1 };
  expect(usageText(stats)).toEqual({ cpu: '3.1%', memory: '1.5KiB / 3GiB' });
  expect(usageText({ ...stats, cpu_percent: null, memory_limit: null })).toEqual({ cpu: '--', memory: '1.5KiB' });
  expect(usageText({ ...stats, memory_usage: null })).toEqual({ cpu: '3.1%', memory: '--' });
});

/**
 * What the panel shows, computed from the server's documents: docker's
 * inspect dicts of containers and images, and stats samples.
 */

export interface IPortBinding {
  HostIp?: string;
  HostPort?: string;
}

export interface IContainer {
  Id: string;
  Name: string;
  Created: string;
  /** docker ps's STATUS text ("Up 5 minutes"), added by the list endpoint. */
  Status?: string;
  ImageName?: string;
  Config: {
    Image?: string;
    ExposedPorts?: Record<string, unknown> | null;
  };
  State: {
    Status: string;
    ExitCode?: number;
    StartedAt?: string;
    FinishedAt?: string;
  };
  HostConfig?: { NetworkMode?: string };
  NetworkSettings?: {
    Ports?: Record<string, IPortBinding[] | null> | null;
  } | null;
}

export interface IImage {
  Id: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Size?: number;
  Created?: string;
  /** docker images' CREATED text ("3 weeks ago"), added by the list endpoint. */
  CreatedSince?: string;
}

/** One sample of `docker stats`' numbers; null where the host has no figure. */
export interface IStats {
  id: string;
  cpu_percent: number | null;
  memory_usage: number | null;
  memory_limit: number | null;
  memory_percent: number | null;
  pids: number | null;
}

/** A TCP port of a container the service proxy can reach. */
export interface IServicePort {
  port: number;
  /** host bindings as docker ps shows them: "0.0.0.0:8080" */
  published: string[];
  url: string;
}

export function containerName(container: IContainer): string {
  return container.Name.replace(/^\//, '');
}

export function imageName(container: IContainer): string {
  return container.Config.Image || container.ImageName || '';
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** The container's own state word: running, exited, paused, created… */
export function stateOf(container: IContainer): string {
  return container.State.Status;
}

/**
 * TCP ports the container exposes or publishes, with their link through the
 * service proxy (`{proxyBase}/{name}/{port}/`).
 */
export function servicePorts(container: IContainer, proxyBase: string): IServicePort[] {
  const published = container.NetworkSettings?.Ports ?? {};
  const keys = new Set([...Object.keys(container.Config.ExposedPorts ?? {}), ...Object.keys(published)]);
  const base = proxyBase.replace(/\/$/, '');
  const ports: IServicePort[] = [];
  for (const key of keys) {
    const [number, protocol = 'tcp'] = key.split('/');
    const port = Number(number);
    if (protocol !== 'tcp' || !Number.isInteger(port)) {
      continue;
    }
    const bindings = published[key] ?? [];
    ports.push({
      port,
      published: bindings.map(b => `${b.HostIp || '0.0.0.0'}:${b.HostPort}`),
      url: `${base}/${encodeURIComponent(containerName(container))}/${port}/`
    });
  }
  return ports.sort((a, b) => a.port - b.port);
}

function scaled(bytes: number, base: number, units: string[], digits: number): string {
  let size = bytes;
  for (const unit of units) {
    if (Math.abs(size) < base || unit === units[units.length - 1]) {
      return unit === 'B' ? `${Math.trunc(size)}B` : `${Number(size.toPrecision(digits))}${unit}`;
    }
    size /= base;
  }
  return '';
}

/** Decimal units, as `docker images` shows sizes: 1.23MB. */
export function humanSize(bytes: number): string {
  return scaled(bytes, 1000, ['B', 'kB', 'MB', 'GB', 'TB'], 3);
}

/** Binary units, as `docker stats` shows memory: 1.5MiB. */
export function humanBinarySize(bytes: number): string {
  return scaled(bytes, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB'], 4);
}

/** The repository:tag names of an image, or its digest names when untagged. */
export function imageTags(image: IImage): string[] {
  if (image.RepoTags && image.RepoTags.length) {
    return image.RepoTags;
  }
  const digests = (image.RepoDigests ?? []).map(d => `${d.split('@')[0]}:<none>`);
  return digests.length ? digests : ['<none>:<none>'];
}

/** A percentage clamped to 0–100 for a bar's width. */
export function barPercent(value: number | null | undefined): number {
  if (value === undefined || value === null || !Number.isFinite(value)) {
    return 0;
  }
  return Math.max(0, Math.min(100, value));
}

/** The CPU and memory figures of a sample, as the panel's bars label them ("--" when unknown). */
export function usageText(stats: IStats): { cpu: string; memory: string } {
  return {
    cpu: stats.cpu_percent === null ? '--' : `${stats.cpu_percent.toFixed(1)}%`,
    memory:
      stats.memory_usage === null
        ? '--'
        : `${humanBinarySize(stats.memory_usage)}` +
          (stats.memory_limit === null ? '' : ` / ${humanBinarySize(stats.memory_limit)}`)
  };
}

import { describe, expect, it } from 'vitest';

import { IContainer, IImage, IStats } from '../src/format';
import { ApiError, ContainersModel, ISocket, ITransport, pathOf } from '../src/model';

/** An in-memory stand-in for the server's REST API, recording requests. */
class FakeServer implements ITransport {
  readonly proxyBase = '/base/containers/proxy';
  containers: IContainer[] = [];
  images: IImage[] = [];
  stats = new Map<string, IStats>();
  requests: string[] = [];
  sockets: { path: string; params?: Record<string, string>; socket: ISocket }[] = [];
  failWith: ApiError | null = null;
  statsFail = false;

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    this.requests.push(`${method} ${path}${body === undefined ? '' : ' ' + JSON.stringify(body)}`);
    if (this.failWith) {
      throw this.failWith;
    }
    if (method === 'GET' && path === 'containers?all=true') {
      return this.containers as T;
    }
    if (method === 'GET' && path === 'images') {
      return this.images as T;
    }
    if (method === 'GET' && path === 'stats') {
      if (this.statsFail) {
        throw new ApiError(500, 'cgroups unreadable');
      }
      return [...this.stats.values()] as T;
    }
    const stop = path.match(/^containers\/([^/]+)\/stop$/);
    if (method === 'POST' && stop) {
      const target = this.containers.find(c => c.Id === stop[1])!;
      target.State = { Status: 'exited', ExitCode: 143 };
      this.stats.delete(target.Id);
      return target as T;
    }
    if (method === 'DELETE' && path.startsWith('images/')) {
      return [] as T;
    }
    throw new ApiError(404, `no route ${method} ${path}`);
  }

  socket(path: string, params?: Record<string, string>): ISocket {
    const socket: ISocket = { onmessage: null, onclose: null, close: () => undefined };
    this.sockets.push({ path, params, socket });
    return socket;
  }
}

function container(id: string, status: string): IContainer {
  return { Id: id, Name: `/${id}-name`, Created: '', Config: { Image: 'busybox' }, State: { Status: status } };
}

function sample(id: string): IStats {
  return { id, cpu_percent: 12.5, memory_usage: 1 << 20, memory_limit: 1 << 30, memory_percent: 0.1, pids: 1 };
}

describe('ContainersModel', () => {
  it('refreshes containers, images and the stats of running containers', async () => {
    const server = new FakeServer();
    server.containers = [container('a', 'running'), container('b', 'exited')];
    server.images = [{ Id: 'sha256:1', RepoTags: ['busybox:latest'] }];
    server.stats.set('a', sample('a'));
    const model = new ContainersModel(server);
    let changes = 0;
    model.changed.connect(() => changes++);

    await model.refresh();

    expect(model.containers.map(c => c.Id)).toEqual(['a', 'b']);
    expect(model.images).toEqual(server.images);
    expect([...model.stats.entries()]).toEqual([['a', sample('a')]]);
    expect(server.requests.filter(r => r.includes('stats'))).toEqual(['GET stats']);
    expect(model.error).toBe('');
    expect(changes).toBe(1);
    expect(model.find('b-name')?.Id).toBe('b');
  });

  it('asks for no stats when nothing runs, and lists containers when stats fail', async () => {
    const server = new FakeServer();
    server.containers = [container('b', 'exited')];
    const model = new ContainersModel(server);
    await model.refresh();
    expect(server.requests).not.toContain('GET stats');

    server.containers.push(container('a', 'running'));
    server.statsFail = true;
    await model.refresh();
    expect(model.containers).toHaveLength(2);
    expect(model.stats.size).toBe(0);
    expect(model.error).toBe('');
  });

  it('keeps a failed refresh as its error and rethrows it', async () => {
    const server = new FakeServer();
    server.failWith = new ApiError(403, 'User is not authorized to read on resource: containers.');
    const model = new ContainersModel(server);

    await expect(model.refresh()).rejects.toThrow('not authorized');
    expect(model.error).toBe('Cannot list containers: User is not authorized to read on resource: containers.');

    server.failWith = null;
    await model.refresh();
    expect(model.error).toBe('');
  });

  it('stops a container, then shows its new state', async () => {
    const server = new FakeServer();
    server.containers = [container('a', 'running')];
    server.stats.set('a', sample('a'));
    const model = new ContainersModel(server);
    await model.refresh();

    await model.stop('a');

    expect(server.requests).toContain('POST containers/a/stop {}');
    expect(model.find('a')?.State.Status).toBe('exited');
    expect(model.stats.size).toBe(0);
  });

  it('passes errors of actions to the caller', async () => {
    const model = new ContainersModel(new FakeServer());
    await expect(model.restart('ghost')).rejects.toMatchObject({ status: 404 });
  });

  it('pulls over a websocket, then lists the new image', async () => {
    const server = new FakeServer();
    const model = new ContainersModel(server);
    const finished = model.pull('registry.lan:5000/team/tool:1');

    const [{ path, params, socket }] = server.sockets;
    expect([path, params]).toEqual(['pull', { image: 'registry.lan:5000/team/tool:1' }]);
    const send = (message: unknown) => socket.onmessage!({ data: JSON.stringify(message) } as MessageEvent);
    send({ type: 'progress', kind: 'layer', id: 'aaaaaaaaaaaa', status: 'downloading', current: 5, total: 10, message: '', time: 0 });
    expect(model.pulls[0].fraction).toBe(0.5);
    server.images = [{ Id: 'sha256:2', RepoTags: ['registry.lan:5000/team/tool:1'] }];
    send({ type: 'done', image: server.images[0] });
    socket.onclose!({} as CloseEvent);

    const progress = await finished;
    expect(progress.state).toBe('done');
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(model.images.map(i => i.Id)).toEqual(['sha256:2']);

    model.dismissPull(progress);
    expect(model.pulls).toEqual([]);
  });

  it('keeps slashes of image names in paths and encodes the rest', async () => {
    expect(pathOf('registry.lan:5000/team/tool:1')).toBe('registry.lan%3A5000/team/tool%3A1');
    const server = new FakeServer();
    await new ContainersModel(server).removeImage('registry.lan:5000/team/tool:1', true);
    expect(server.requests[0]).toBe('DELETE images/registry.lan%3A5000/team/tool%3A1?force=true');
  });
});

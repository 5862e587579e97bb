/** The HTTP endpoint: /metrics (Prometheus), /healthz (the process answers), /readyz (accepting work). */
import http from 'node:http';
import type { AdminView } from './admin-view.js';
import { Metrics } from './metrics.js';

export class AdminHttp {
  private readonly server: http.Server;
  readonly metrics: Metrics;

  constructor(private readonly view: AdminView) {
    this.metrics = new Metrics(view);
    this.server = http.createServer((req, res) => {
      this.handle(req.url ?? '/', res).catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
      });
    });
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => {
        this.server.removeListener('error', reject);
        resolve();
      });
    });
    return (this.server.address() as { port: number }).port;
  }

  private async handle(url: string, res: http.ServerResponse): Promise<void> {
    const path = url.split('?')[0];
    if (path === '/metrics') {
      const body = await this.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(body);
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const ready = this.view.ready;
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz, /readyz\n');
  }

  close(): Promise<void> {
    this.metrics.close();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

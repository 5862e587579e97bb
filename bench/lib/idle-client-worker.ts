/**
 * A child process of bench/idle-clients.ts holding many idle client connections: a bare socket per
 * client, StartupMessage, SCRAM-SHA-256 (or md5/cleartext) with pgway's own wire code, then nothing
 * after ReadyForQuery. Talks to its parent in JSON lines: commands on stdin, reports on stdout.
 *
 *   stdin:  go | status | query <n> | close
 *   stdout: {"type":"ready"} | {"type":"done",...} | {"type":"status",...} | {"type":"query",...} | {"type":"closed"}
 */
import net from 'node:net';
import readline from 'node:readline';
import { AuthCode, Backend } from '../../src/wire/codes.js';
import { decodeErrorFields } from '../../src/wire/decode.js';
import * as msg from '../../src/wire/messages.js';
import { md5Response, md5Stored, ScramClientExchange } from '../../src/wire/scram.js';

export interface WorkerConfig {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  count: number;
  /** Logins in flight at once. */
  concurrency: number;
  /** A login without ReadyForQuery after this long counts as failed and its socket is closed. */
  loginTimeoutMs: number;
}

export interface WorkerCounts {
  ok: number;
  failed: number;
  /** Logins started and not finished yet. */
  waiting: number;
  notStarted: number;
  /** Logged-in clients whose connection the server side closed later. */
  closedLater: number;
  errors: Record<string, number>;
  elapsedMs: number;
}

type Settle = (error?: string) => void;

/** One client: logs in, then idles; can run one simple query on request. */
class IdleClient {
  ready = false;
  private closing = false;
  private queryError: string | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private scram: ScramClientExchange | undefined;
  private onLogin: Settle | undefined;
  private onQuery: Settle | undefined;
  private readonly socket: net.Socket;

  constructor(private readonly cfg: WorkerConfig, onLogin: Settle, private readonly onLostAfterLogin: () => void) {
    this.onLogin = onLogin;
    this.socket = net.connect({ host: cfg.host, port: cfg.port, noDelay: true });
    this.socket.on('connect', () => this.socket.write(msg.startupMessage([['user', cfg.user], ['database', cfg.database]])));
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.settle(err.code ?? err.message));
    this.socket.on('close', () => {
      if (this.ready && !this.closing) this.onLostAfterLogin();
      this.ready = false;
      this.settle('connection closed by the server');
    });
  }

  query(sql: string, timeoutMs: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      if (!this.ready) return resolve('not logged in');
      const timer = setTimeout(() => this.finishQuery(`no answer within ${timeoutMs} ms`), timeoutMs);
      this.onQuery = (error) => {
        clearTimeout(timer);
        resolve(error);
      };
      this.socket.write(msg.query(sql));
    });
  }

  close(): void {
    this.closing = true;
    if (this.socket.writable) this.socket.end(msg.TERMINATE);
    this.socket.destroySoon();
  }

  destroy(): void {
    this.closing = true;
    this.socket.destroy();
  }

  private settle(error?: string): void {
    const login = this.onLogin;
    this.onLogin = undefined;
    login?.(error);
    if (error) this.finishQuery(error);
  }

  private finishQuery(error?: string): void {
    const q = this.onQuery;
    this.onQuery = undefined;
    q?.(error);
  }

  private onData(chunk: Buffer): void {
    let data = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (data.length >= 5) {
      const len = data.readInt32BE(1);
      if (data.length < len + 1) break;
      this.onMessage(data[0]!, data.subarray(0, len + 1));
      data = data.subarray(len + 1);
    }
    // Copy the leftover so an idle client does not pin a whole read buffer.
    this.buf = data.length ? Buffer.from(data) : Buffer.alloc(0);
  }

  private onMessage(code: number, frame: Buffer): void {
    switch (code) {
      case Backend.Authentication:
        this.onAuthentication(frame);
        return;
      case Backend.ErrorResponse: {
        const fields = decodeErrorFields(frame, 0, frame.length);
        const text = `${fields.get('S') ?? 'ERROR'} ${fields.get('C') ?? ''}: ${fields.get('M') ?? 'error'}`;
        if (this.onLogin) {
          this.settle(text);
          this.destroy();
        } else {
          this.queryError = text;
        }
        return;
      }
      case Backend.ReadyForQuery:
        if (this.onLogin) {
          this.ready = true;
          this.settle();
        } else {
          const err = this.queryError;
          this.queryError = undefined;
          this.finishQuery(err);
        }
        return;
      default:
        return; // ParameterStatus, BackendKeyData, rows: nothing to do
    }
  }

  private onAuthentication(frame: Buffer): void {
    const kind = frame.readInt32BE(5);
    const body = frame.subarray(9);
    try {
      switch (kind) {
        case AuthCode.Ok:
          return;
        case AuthCode.CleartextPassword:
          this.socket.write(msg.passwordMessage(this.cfg.password));
          return;
        case AuthCode.MD5Password:
          this.socket.write(msg.passwordMessage(md5Response(md5Stored(this.cfg.password, this.cfg.user), body.subarray(0, 4))));
          return;
        case AuthCode.SASL:
          if (!body.toString('utf8').split('\0').includes('SCRAM-SHA-256')) throw new Error('server offers no SCRAM-SHA-256');
          this.scram = new ScramClientExchange(this.cfg.password);
          this.socket.write(msg.saslInitialResponse('SCRAM-SHA-256', this.scram.first()));
          return;
        case AuthCode.SASLContinue:
          this.socket.write(msg.saslResponse(this.scram!.final(body.toString('utf8'))));
          return;
        case AuthCode.SASLFinal:
          if (!this.scram!.verify(body.toString('utf8'))) throw new Error('wrong SCRAM server signature');
          return;
        default:
          throw new Error(`unsupported authentication request ${kind}`);
      }
    } catch (err) {
      this.settle(err instanceof Error ? err.message : String(err));
      this.destroy();
    }
  }
}

function runWorker(cfg: WorkerConfig): void {
  const clients: IdleClient[] = [];
  const errors: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  let started = 0;
  let inFlight = 0;
  let closedLater = 0;
  let goAt = 0;
  let doneSent = false;
  const send = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
  const counts = (): WorkerCounts => ({ ok, failed, waiting: inFlight, notStarted: cfg.count - started, closedLater, errors, elapsedMs: Date.now() - goAt });

  const launch = (): void => {
    while (inFlight < cfg.concurrency && started < cfg.count) {
      started++;
      inFlight++;
      let client: IdleClient | undefined = undefined;
      const timer = setTimeout(() => {
        settle(`no ReadyForQuery within ${cfg.loginTimeoutMs} ms`);
        client?.destroy();
      }, cfg.loginTimeoutMs);
      let settled = false;
      const settle: Settle = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        inFlight--;
        if (error) {
          failed++;
          errors[error] = (errors[error] ?? 0) + 1;
        } else {
          ok++;
        }
        launch();
        if (!doneSent && ok + failed === cfg.count) {
          doneSent = true;
          send({ type: 'done', ...counts() });
        }
      };
      client = new IdleClient(cfg, settle, () => closedLater++);
      clients.push(client);
    }
  };

  const queryMany = async (n: number): Promise<void> => {
    const ready = clients.filter((c) => c.ready);
    const picked = ready.filter((_, i) => i % Math.max(1, Math.floor(ready.length / n)) === 0).slice(0, n);
    const results = await Promise.all(picked.map((c) => c.query('SELECT 1', 10_000)));
    const qErrors: Record<string, number> = {};
    for (const r of results) if (r) qErrors[r] = (qErrors[r] ?? 0) + 1;
    send({ type: 'query', asked: picked.length, ok: results.filter((r) => !r).length, errors: qErrors });
  };

  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const [cmd, arg] = line.trim().split(/\s+/);
    if (cmd === 'go') {
      goAt = Date.now();
      launch();
    } else if (cmd === 'status') {
      send({ type: 'status', ...counts() });
    } else if (cmd === 'query') {
      void queryMany(Number(arg) || 1);
    } else if (cmd === 'close') {
      for (const c of clients) c.close();
      send({ type: 'closed' });
      setTimeout(() => process.exit(0), 500).unref();
    }
  });
  // The parent went away: do not linger with thousands of sockets.
  rl.on('close', () => process.exit(0));
  send({ type: 'ready' });
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
runWorker(cfg);

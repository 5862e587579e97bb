/**
 * What a request flow needs from its client session (ClientSession): the socket's writes and
 * reads, the login reply and the client's end, as a small interface so flows stay testable.
 */
export interface FlowHost {
  readonly id: number;
  /** `connecting` until the login reply is sent, then `ready`; `closed` once the client is gone. */
  readonly state: string;
  readonly params: ReadonlyMap<string, string>;
  /** Writes a reply pgway makes itself to the client (see forward for the server's bytes); false when it had to be queued. */
  send(bytes: Buffer): boolean;
  /** Writes forwarded bytes to the client; false when they had to be queued. */
  forward(chunk: Buffer): boolean;
  /** Bytes queued towards the client. */
  readonly pendingOut: number;
  cork(): void;
  uncork(): void;
  pauseReading(): void;
  resumeReading(): void;
  /**
   * Ends the client with a FATAL error: a GatewayError or an encoded ErrorResponse as it is,
   * anything else as an unexpected failure (logged).
   */
  fail(err: unknown): void;
  /** Ends the client without a word: it said Terminate, or already heard why. */
  endQuietly(): void;
  /** Sends the login reply with these ParameterStatus values; `pid`: the server's (session mode). */
  finishLogin(params: ReadonlyMap<string, string> | Buffer, pid?: number): void;
}

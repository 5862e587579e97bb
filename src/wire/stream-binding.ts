/**
 * Node's stream binding (`process.binding('stream_wrap')`), which directReads and SocketWriter use
 * to skip net.Socket's JavaScript on the way to and from a socket's libuv handle. Undefined where
 * this Node.js release does not have it in the shape they expect; both then use the public API.
 */
export interface StreamBinding {
  /** A write request for a handle's writeBuffer(); SocketWriter gives it its fields. */
  WriteWrap: new () => object;
  /** A shutdown request for a handle's shutdown(); ClientLink's HandleLink gives it its fields. */
  ShutdownWrap?: new () => object;
  /** Where the handle leaves a read's byte count (or error) and whether a write went async. */
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

export const streamBinding: StreamBinding | undefined = (() => {
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamBinding> }).binding('stream_wrap');
    if (
      typeof b.WriteWrap === 'function' &&
      b.streamBaseState instanceof Int32Array &&
      typeof b.kLastWriteWasAsync === 'number' &&
      typeof b.kReadBytesOrError === 'number'
    ) {
      return b as StreamBinding;
    }
  } catch {
    // No process.binding: sockets are read and written through net.Socket.
  }
  return undefined;
})();

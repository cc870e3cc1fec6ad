// A Server-Sent Events parser (the WHATWG event-stream format), fed text chunks as they arrive.
// The console reads event streams with fetch() because EventSource cannot send an Authorization
// header.

/**
 * @typedef {{ event: string, data: string, id: string | null }} SseMessage
 */

export class SseParser {
  constructor() {
    this.buffer = '';
    this.event = '';
    this.data = [];
    this.lastId = null;
    /** Reconnection delay the server asked for, in milliseconds. */
    this.retry = null;
  }

  /**
   * Feeds a chunk of the stream; returns the messages it completed.
   * @param {string} chunk
   * @returns {SseMessage[]}
   */
  push(chunk) {
    this.buffer += chunk;
    const messages = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone trailing '\r' may be the first half of '\r\n': wait for the next chunk.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const message = this.line(line);
      if (message) messages.push(message);
    }
    return messages;
  }

  /** @param {string} line @returns {SseMessage | null} */
  line(line) {
    if (line === '') {
      if (this.data.length === 0) {
        this.event = '';
        return null;
      }
      const message = { event: this.event || 'message', data: this.data.join('\n'), id: this.lastId };
      this.event = '';
      this.data = [];
      return message;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.event = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
    return null;
  }
}

/** One dispatched Server-Sent Event (the fields of the WHATWG event-stream format the client needs). */
export interface SseMessage {
  /** `message` unless the server named another type. */
  event: string;
  data: string;
  /** The last event id as of this event (ids carry over from earlier events, as in EventSource). */
  id: string | undefined;
}

/**
 * Parses an event stream (text/event-stream) as its bytes arrive, in chunks cut anywhere: lines
 * end in CRLF, LF or CR, comments (`:`) are skipped, and an event is dispatched at a blank line
 * only when it has data — an event cut off by a dropped connection is never dispatched, so a
 * resumed stream cannot repeat or lose half of it. An id takes effect at the blank line ending its
 * block, even a block without data (the server's starting cursor): `lastEventId` is what to
 * resume from.
 */
export class SseParser {
  private buffer = '';
  /** A chunk ended in CR: a LF starting the next one belongs to that line end. */
  private skipLeadingLf = false;
  private data: string[] = [];
  private event = '';
  private pendingId: string | undefined;
  /** The id of the last complete block that had one. */
  lastEventId: string | undefined;

  push(chunk: string): SseMessage[] {
    let text = chunk;
    if (this.skipLeadingLf && text.startsWith('\n')) text = text.slice(1);
    this.skipLeadingLf = false;
    this.buffer += text;
    const out: SseMessage[] = [];
    for (;;) {
      const end = this.buffer.search(/[\r\n]/);
      if (end < 0) break;
      const line = this.buffer.slice(0, end);
      let next = end + 1;
      if (this.buffer[end] === '\r') {
        if (end + 1 === this.buffer.length) this.skipLeadingLf = true;
        else if (this.buffer[end + 1] === '\n') next = end + 2;
      }
      this.buffer = this.buffer.slice(next);
      const message = this.line(line);
      if (message) out.push(message);
    }
    return out;
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') {
      if (this.pendingId !== undefined) this.lastEventId = this.pendingId;
      const message = this.data.length > 0 ? { event: this.event || 'message', data: this.data.join('\n'), id: this.lastEventId } : undefined;
      this.data = [];
      this.event = '';
      this.pendingId = undefined;
      return message;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'data') this.data.push(value);
    else if (name === 'event') this.event = value;
    else if (name === 'id' && !value.includes('\0')) this.pendingId = value;
    return undefined;
  }
}

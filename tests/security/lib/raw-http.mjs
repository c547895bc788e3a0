// Raw HTTP over a TCP socket, for requests a well-behaved client library
// would refuse or rewrite (duplicate headers, ".." kept, h2c upgrades).
import net from 'node:net';

/**
 * Send `text` as is to 127.0.0.1:port and collect everything the server
 * sends until it closes the connection (or `timeout` ms of silence).
 * Resolves {raw, responses: [{status, headers, body}], closed}.
 */
export function rawHttp(port, text, { timeout = 3000 } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    let data = Buffer.alloc(0);
    let closed = false;
    const done = () => resolve({ raw: data.toString('latin1'), responses: parseResponses(data), closed });
    s.setTimeout(timeout, () => { s.destroy(); done(); });
    s.on('data', (d) => { data = Buffer.concat([data, d]); });
    s.on('close', () => { closed = true; done(); });
    s.on('error', (e) => (data.length ? done() : reject(e)));
  });
}

/** Split a byte stream into HTTP/1.x responses (Content-Length framed). */
export function parseResponses(buf) {
  const out = [];
  let s = buf.toString('latin1');
  while (s.startsWith('HTTP/')) {
    const end = s.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine, ...lines] = s.slice(0, end).split('\r\n');
    const headers = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const status = Number(statusLine.split(' ')[1]);
    const len = Number(headers['content-length'] ?? 0);
    const body = s.slice(end + 4, end + 4 + len);
    out.push({ status, headers, body });
    s = s.slice(end + 4 + len);
  }
  return out;
}

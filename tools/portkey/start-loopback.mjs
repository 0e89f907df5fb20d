// Starts Portkey's open-source gateway (the pinned @portkey-ai/gateway of package.json) for
// tools/gateway_compare.sh, on loopback only and on a free port. Its start script takes
// --port=N but listens on every interface; this wrapper makes its one server listen on
// 127.0.0.1 and prints the port the kernel chose, in the line the benchmark scripts wait for:
//   portkey listening on http://127.0.0.1:PORT
//
//   node tools/portkey/start-loopback.mjs        (after `npm ci` in tools/portkey)

import http from 'node:http';

const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (port, host, ...rest) {
  this.once('listening', () => {
    process.stderr.write(`portkey listening on http://127.0.0.1:${this.address().port}\n`);
  });
  return listen.call(this, port, '127.0.0.1', ...rest);
};

process.argv.push('--port=0', '--headless');
await import('@portkey-ai/gateway/build/start-server.js');

// transport.js counts the transports the AWS SDK for JavaScript uses, for
// the scripts beside it: its HTTP/2 handler calls http2.connect, an
// HTTP/1.1 handler calls http(s).request. Call countTransports before the
// SDK is loaded; the object it returns fills in as the SDK connects.
"use strict";

const http = require("node:http");
const https = require("node:https");
const http2 = require("node:http2");

function countTransports() {
  const transport = { http2Sessions: 0, alpnProtocols: [], http1Requests: 0, tlsSockets: 0 };
  const connect = http2.connect;
  http2.connect = function (...args) {
    const session = connect.apply(this, args);
    transport.http2Sessions++;
    session.once("connect", () => transport.alpnProtocols.push(String(session.alpnProtocol)));
    return session;
  };
  for (const mod of [http, https]) {
    const request = mod.request;
    mod.request = function (...args) {
      transport.http1Requests++;
      const req = request.apply(this, args);
      req.once("socket", (s) => {
        if (s.encrypted) transport.tlsSockets++;
      });
      return req;
    };
  }
  return transport;
}

module.exports = { countTransports };

// tls.js drives a shoal server over TLS (https://) with the AWS SDK for
// JavaScript v3 (@aws-sdk/client-kinesis, from NODE_PATH, the install of
// package-lock.json that interop.js uses too), for integration/tls_test.go
// (TestTLSSelfSignedBinary). The Go test runs it with NODE_EXTRA_CA_CERTS
// naming the server's self-signed CA, as shoal's start-up message says, or
// without it.
//
// Usage: node tls.js INPUT.json
//
// INPUT names the endpoint, the request handler ("default": the Kinesis
// client's own NodeHttp2Handler, h2 through ALPN; "http1": NodeHttpHandler),
// the stream to create and the data to put. With "expectFailure" the first
// call must fail (the CA is not trusted) and the script reports how. It
// prints one JSON object: what the calls returned, or the failure, and the
// transports used. An unexpected failure exits non-zero.
"use strict";

const fs = require("node:fs");
const { countTransports } = require("./transport.js");

// Count the transports before the SDK is loaded.
const transport = countTransports();

const {
  KinesisClient,
  CreateStreamCommand,
  ListStreamsCommand,
  PutRecordCommand,
} = require("@aws-sdk/client-kinesis");

const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));

async function main() {
  const out = {
    sdkVersion: require("@aws-sdk/client-kinesis/package.json").version,
    nodeVersion: process.version,
    extraCACerts: process.env.NODE_EXTRA_CA_CERTS ?? null,
  };
  const config = {
    endpoint: input.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "shoal", secretAccessKey: "shoal" },
    maxAttempts: 1,
  };
  if (input.handler === "http1") {
    const { NodeHttpHandler } = require("@smithy/node-http-handler");
    config.requestHandler = new NodeHttpHandler();
  } else if (input.handler !== "default") {
    throw new Error(`unknown handler ${input.handler}`);
  }
  const client = new KinesisClient(config);
  out.requestHandler = client.config.requestHandler.constructor.name;
  try {
    if (input.expectFailure) {
      try {
        await client.send(new ListStreamsCommand({}));
        out.failure = null;
      } catch (err) {
        out.failure = { name: err.name, code: err.code ?? null, message: err.message };
      }
    } else {
      await client.send(new CreateStreamCommand({ StreamName: input.streamName, ShardCount: 1 }));
      const put = await client.send(new PutRecordCommand({
        StreamName: input.streamName, PartitionKey: "js", Data: new Uint8Array(Buffer.from(input.data, "utf8")),
      }));
      out.put = { shardId: put.ShardId, sequenceNumber: put.SequenceNumber };
      out.streamNames = (await client.send(new ListStreamsCommand({}))).StreamNames;
    }
  } finally {
    client.destroy();
  }
  out.transport = transport;
  return out;
}

main().then(
  (out) => process.stdout.write(JSON.stringify(out) + "\n"),
  (err) => {
    process.stderr.write(`${err.stack ?? err}\n`);
    process.exit(1);
  },
);

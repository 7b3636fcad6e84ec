// auth.js drives a shoal server that verifies SigV4 (--auth-config) with the
// AWS SDK for JavaScript v3 (@aws-sdk/client-kinesis, from NODE_PATH, the
// install of package-lock.json that interop.js uses too), for
// integration/auth_interop_test.go (TestAuthJSSDK).
//
// Usage: node auth.js INPUT.json
//
// The main client takes its credentials from the SDK's default chain: the Go
// test sets AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to a principal whose
// policy allows the calls under "ok". INPUT names the endpoint, the request
// handler ("default": NodeHttp2Handler, h2c to an http:// endpoint; "http1":
// NodeHttpHandler), the stream, a payload, and the keys that must fail (a
// wrong secret, an unknown key id). The script prints one JSON object: what
// the allowed calls returned, each expected failure as the SDK parsed it, and
// the transports used. An unexpected failure exits non-zero.
"use strict";

const fs = require("node:fs");
const { countTransports } = require("./transport.js");

// Count the transports before the SDK is loaded.
const transport = countTransports();

const {
  KinesisClient,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  DeleteStreamCommand,
  ListStreamsCommand,
  PutRecordCommand,
  ListShardsCommand,
  GetShardIteratorCommand,
  GetRecordsCommand,
} = require("@aws-sdk/client-kinesis");

const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));

function newClient(extra) {
  const config = { endpoint: input.endpoint, region: input.region, maxAttempts: 1, ...extra };
  if (input.handler === "http1") {
    const { NodeHttpHandler } = require("@smithy/node-http-handler");
    config.requestHandler = new NodeHttpHandler();
  } else if (input.handler !== "default") {
    throw new Error(`unknown handler ${input.handler}`);
  }
  return new KinesisClient(config);
}

function keyed(key, extra) {
  return newClient({ credentials: { accessKeyId: key.id, secretAccessKey: key.secret }, ...extra });
}

// failure runs fn, which must fail, and describes the error.
async function failure(fn) {
  try {
    await fn();
  } catch (err) {
    return {
      code: err.name,
      message: err.message,
      fault: err.$fault ?? null,
      status: err.$metadata?.httpStatusCode ?? null,
      requestId: err.$metadata?.requestId ?? null,
      attempts: err.$metadata?.attempts ?? null,
    };
  }
  return { code: null, succeeded: true };
}

async function main() {
  const out = {
    sdkVersion: require("@aws-sdk/client-kinesis/package.json").version,
    nodeVersion: process.version,
    ok: {},
    errors: {},
  };
  const clients = [];
  const track = (c) => (clients.push(c), c);
  try {
    const kc = track(newClient({})); // credentials: the default chain (environment)
    out.requestHandler = kc.config.requestHandler.constructor.name;
    const creds = await kc.config.credentials();
    out.ok.credentialKeyId = creds.accessKeyId;
    const stream = input.streamName;
    // The allowed calls: the first that fails is reported as out.okError
    // (the failures below are still tried).
    let step = "CreateStream";
    try {
      const created = await kc.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
      out.ok.createStatus = created.$metadata.httpStatusCode;
      step = "DescribeStreamSummary";
      const summary = (await kc.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary;
      out.ok.summary = { arn: summary.StreamARN, status: summary.StreamStatus };
      step = "PutRecord";
      const put = await kc.send(new PutRecordCommand({
        StreamName: stream, PartitionKey: "js-key", Data: new Uint8Array(Buffer.from(input.payload, "utf8")),
      }));
      out.ok.putRecord = { shardId: put.ShardId, sequenceNumber: put.SequenceNumber };
      step = "ListShards";
      out.ok.shards = (await kc.send(new ListShardsCommand({ StreamName: stream }))).Shards.map((s) => s.ShardId);
      step = "GetShardIterator";
      const it = (await kc.send(new GetShardIteratorCommand({
        StreamName: stream, ShardId: put.ShardId, ShardIteratorType: "AT_SEQUENCE_NUMBER", StartingSequenceNumber: put.SequenceNumber,
      }))).ShardIterator;
      step = "GetRecords";
      const got = await kc.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1 }));
      out.ok.read = got.Records.map((r) => ({ sequenceNumber: r.SequenceNumber, data: Buffer.from(r.Data).toString("utf8") }));
    } catch (err) {
      out.okError = { step, ...(await failure(() => Promise.reject(err))) };
    }

    out.errors.deniedAction = await failure(() => kc.send(new DeleteStreamCommand({ StreamName: stream })));
    out.errors.wrongSecret = await failure(() => track(keyed(input.wrongSecretKey)).send(new ListStreamsCommand({})));
    out.errors.unknownKey = await failure(() => track(keyed(input.unknownKey)).send(new ListStreamsCommand({})));
    out.errors.otherRegion = await failure(() => track(newClient({ region: input.otherRegion })).send(new ListStreamsCommand({})));
  } finally {
    for (const c of clients) c.destroy();
  }
  out.transport = transport;
  return out;
}

main().then(
  (out) => process.stdout.write(JSON.stringify(out) + "\n"),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

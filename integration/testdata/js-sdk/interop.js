// interop.js drives a shoal server with the AWS SDK for JavaScript v3
// (@aws-sdk/client-kinesis, from NODE_PATH) for integration/interop_js_test.go.
//
// Usage: node interop.js INPUT.json
//
// INPUT names the endpoint, the request handler ("default": the Kinesis
// client's own, NodeHttp2Handler; "http1": NodeHttpHandler), the stream and consumer to create and the
// records to put (data in base64). The script prints one JSON object on
// stdout with everything the SDK returned that the Go test checks; the Go
// test reads the same records with aws-sdk-go-v2 and compares. Any
// unexpected failure exits non-zero with the error on stderr.
"use strict";

const fs = require("node:fs");
const { countTransports } = require("./transport.js");

// Count the transports before the SDK is loaded.
const transport = countTransports();

const kinesis = require("@aws-sdk/client-kinesis");
const {
  KinesisClient,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  DescribeStreamCommand,
  PutRecordCommand,
  PutRecordsCommand,
  ListShardsCommand,
  GetShardIteratorCommand,
  GetRecordsCommand,
  RegisterStreamConsumerCommand,
  DescribeStreamConsumerCommand,
  SubscribeToShardCommand,
  SplitShardCommand,
  DeregisterStreamConsumerCommand,
  ResourceNotFoundException,
  waitUntilStreamExists,
} = kinesis;

const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const b64 = (u8) => Buffer.from(u8).toString("base64");
const bytes = (s) => new Uint8Array(Buffer.from(s, "base64"));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function record(r) {
  return {
    sequenceNumber: r.SequenceNumber,
    partitionKey: r.PartitionKey,
    data: b64(r.Data),
    arrivalMillis: r.ApproximateArrivalTimestamp instanceof Date ? r.ApproximateArrivalTimestamp.getTime() : null,
    encryptionType: r.EncryptionType ?? null,
  };
}

function entry(r) {
  const e = { PartitionKey: r.partitionKey, Data: bytes(r.data) };
  if (r.explicitHashKey) e.ExplicitHashKey = r.explicitHashKey;
  return e;
}

function describeError(err) {
  return {
    name: err.name,
    isResourceNotFound: err instanceof ResourceNotFoundException,
    fault: err.$fault ?? null,
    httpStatusCode: err.$metadata?.httpStatusCode ?? null,
    requestId: err.$metadata?.requestId ?? null,
    message: err.message,
  };
}

// expectError runs fn, which must fail, and describes the error.
async function expectError(fn) {
  try {
    await fn();
  } catch (err) {
    return describeError(err);
  }
  throw new Error("the call succeeded; an error was expected");
}

async function main() {
  const out = {
    sdkVersion: require("@aws-sdk/client-kinesis/package.json").version,
    nodeVersion: process.version,
  };
  const config = {
    endpoint: input.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "shoal", secretAccessKey: "shoal" },
  };
  if (input.handler === "http1") {
    // The SDK's HTTP/1.1 handler, which users may configure instead.
    const { NodeHttpHandler } = require("@smithy/node-http-handler");
    config.requestHandler = new NodeHttpHandler();
  } else if (input.handler !== "default") {
    throw new Error(`unknown handler ${input.handler}`);
  }
  const client = new KinesisClient(config);
  out.requestHandler = client.config.requestHandler.constructor.name;
  out.handlerProtocol = client.config.requestHandler.metadata?.handlerProtocol ?? null;
  const stream = input.streamName;
  try {
    const created = await client.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 2 }));
    out.createStatus = created.$metadata.httpStatusCode;
    const waited = await waitUntilStreamExists({ client, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { StreamName: stream });
    out.waiterState = waited.state;
    const summary = (await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary;
    out.summary = {
      status: summary.StreamStatus,
      arn: summary.StreamARN,
      openShardCount: summary.OpenShardCount,
      mode: summary.StreamModeDetails?.StreamMode ?? null,
      created: summary.StreamCreationTimestamp instanceof Date,
    };

    const one = await client.send(new PutRecordCommand({ StreamName: stream, ...entry(input.putRecord) }));
    out.putRecord = { shardId: one.ShardId, sequenceNumber: one.SequenceNumber };
    const many = await client.send(new PutRecordsCommand({ StreamARN: summary.StreamARN, Records: input.putRecords.map(entry) }));
    out.putRecords = {
      failed: many.FailedRecordCount,
      records: many.Records.map((r) => ({ shardId: r.ShardId, sequenceNumber: r.SequenceNumber, errorCode: r.ErrorCode ?? null })),
    };

    const shards = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards;
    out.shards = shards.map((s) => ({
      shardId: s.ShardId,
      start: s.HashKeyRange.StartingHashKey,
      end: s.HashKeyRange.EndingHashKey,
      startingSequenceNumber: s.SequenceNumberRange.StartingSequenceNumber,
    }));

    // Read every shard from TRIM_HORIZON until it is caught up.
    out.read = {};
    for (const s of shards) {
      let it = (await client.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: s.ShardId, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator;
      const recs = [];
      for (let i = 0; i < 50 && it; i++) {
        const got = await client.send(new GetRecordsCommand({ ShardIterator: it, Limit: 3 }));
        recs.push(...got.Records.map(record));
        it = got.NextShardIterator;
        if (got.Records.length === 0 && got.MillisBehindLatest === 0) break;
      }
      out.read[s.ShardId] = recs;
    }

    out.errors = {
      describeMissing: await expectError(() => client.send(new DescribeStreamCommand({ StreamName: input.missingStream }))),
      longPartitionKey: await expectError(() =>
        client.send(new PutRecordCommand({ StreamName: stream, PartitionKey: "k".repeat(257), Data: bytes("") }))),
    };

    const reg = (await client.send(new RegisterStreamConsumerCommand({ StreamARN: summary.StreamARN, ConsumerName: input.consumerName }))).Consumer;
    out.consumer = { arn: reg.ConsumerARN, registeredStatus: reg.ConsumerStatus, polls: 0 };
    for (;;) {
      const d = (await client.send(new DescribeStreamConsumerCommand({ ConsumerARN: reg.ConsumerARN }))).ConsumerDescription;
      out.consumer.polls++;
      out.consumer.status = d.ConsumerStatus;
      out.consumer.streamArn = d.StreamARN;
      if (d.ConsumerStatus === "ACTIVE") break;
      await sleep(200);
    }

    out.errors.subscribeMissingConsumer = await expectError(() =>
      client.send(new SubscribeToShardCommand({
        ConsumerARN: summary.StreamARN + "/consumer/missing:1",
        ShardId: input.subscribeShard,
        StartingPosition: { Type: "TRIM_HORIZON" },
      })));

    out.subscribe = await subscribe(client, reg.ConsumerARN, stream, out.read[input.subscribeShard].length);
    out.shardEnd = await subscribeToSplit(client, reg.ConsumerARN, stream, out.shards.find((s) => s.shardId === input.splitShard));
    out.deregistered = await subscribeDeregistered(client, reg.ConsumerARN, stream, out.shardEnd.childShards[0]);
  } finally {
    client.destroy();
  }
  out.transport = transport;
  return out;
}

// subscribe reads the shard input.subscribeShard from TRIM_HORIZON through
// SubscribeToShard: first the before records already there, then, once it
// has them all, input.afterRecords, which it puts itself. It then stops
// reading and aborts the request.
async function subscribe(client, consumerARN, stream, before) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error("subscription timed out")), 20000);
  const res = { events: [], records: [], unknownEvents: [], before, after: null };
  try {
    const resp = await client.send(
      new SubscribeToShardCommand({ ConsumerARN: consumerARN, ShardId: input.subscribeShard, StartingPosition: { Type: "TRIM_HORIZON" } }),
      { abortSignal: abort.signal },
    );
    res.httpStatusCode = resp.$metadata.httpStatusCode;
    for await (const ev of resp.EventStream) {
      if (!ev.SubscribeToShardEvent) {
        res.unknownEvents.push(Object.keys(ev));
        continue;
      }
      const e = ev.SubscribeToShardEvent;
      res.events.push({
        records: e.Records.length,
        continuationSequenceNumber: e.ContinuationSequenceNumber,
        millisBehindLatest: e.MillisBehindLatest,
        lastSequenceNumber: e.Records.length ? e.Records[e.Records.length - 1].SequenceNumber : null,
      });
      res.records.push(...e.Records.map(record));
      if (res.after === null && res.records.length >= before) {
        const put = await client.send(new PutRecordsCommand({ StreamName: stream, Records: input.afterRecords.map(entry) }));
        res.after = {
          failed: put.FailedRecordCount,
          records: put.Records.map((r) => ({ shardId: r.ShardId, sequenceNumber: r.SequenceNumber, errorCode: r.ErrorCode ?? null })),
        };
      }
      if (res.after !== null && res.records.length >= before + input.afterRecords.length) break;
    }
    res.stoppedByClient = true;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return res;
}

function shardEvent(e) {
  return {
    records: e.Records.length,
    continuationSequenceNumber: e.ContinuationSequenceNumber ?? null,
    millisBehindLatest: e.MillisBehindLatest ?? null,
    lastSequenceNumber: e.Records.length ? e.Records[e.Records.length - 1].SequenceNumber : null,
    childShards: (e.ChildShards ?? []).map((c) => ({ shardId: c.ShardId, parentShards: c.ParentShards, start: c.HashKeyRange.StartingHashKey, end: c.HashKeyRange.EndingHashKey })),
  };
}

// subscribeToSplit reads input.splitShard from TRIM_HORIZON, splits it in
// the middle after the first event, and reads on until the event stream
// ends, which it must do cleanly after an event naming the children.
async function subscribeToSplit(client, consumerARN, stream, shard) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error("subscription timed out")), 20000);
  const res = { events: [], records: [], childShards: [], endedCleanly: false };
  try {
    const resp = await client.send(
      new SubscribeToShardCommand({ ConsumerARN: consumerARN, ShardId: shard.shardId, StartingPosition: { Type: "TRIM_HORIZON" } }),
      { abortSignal: abort.signal },
    );
    for await (const ev of resp.EventStream) {
      const e = ev.SubscribeToShardEvent;
      if (!e) throw new Error(`unexpected event ${Object.keys(ev)}`);
      res.events.push(shardEvent(e));
      res.records.push(...e.Records.map(record));
      if (res.events.length === 1) {
        const mid = (BigInt(shard.start) + BigInt(shard.end) + 1n) / 2n;
        await client.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: shard.shardId, NewStartingHashKey: mid.toString() }));
      }
      if (e.ChildShards?.length) res.childShards = e.ChildShards.map((c) => c.ShardId);
    }
    res.endedCleanly = true;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return res;
}

// subscribeDeregistered subscribes to shardId at LATEST, deregisters the
// consumer, and expects the event stream to fail with the exception the
// server sends.
async function subscribeDeregistered(client, consumerARN, stream, shardId) {
  await waitUntilStreamExists({ client, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { StreamName: stream });
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error("subscription timed out")), 20000);
  const res = { shardId, events: 0, error: null };
  try {
    const resp = await client.send(
      new SubscribeToShardCommand({ ConsumerARN: consumerARN, ShardId: shardId, StartingPosition: { Type: "LATEST" } }),
      { abortSignal: abort.signal },
    );
    // The response has arrived, so the subscription is running.
    await client.send(new DeregisterStreamConsumerCommand({ ConsumerARN: consumerARN }));
    res.error = await expectError(async () => {
      for await (const ev of resp.EventStream) res.events++;
    });
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return res;
}

main().then(
  (out) => {
    process.stdout.write(JSON.stringify(out) + "\n");
    // client.destroy() must have closed every connection: if anything still
    // holds the process open, say so instead of hanging.
    setTimeout(() => {
      process.stderr.write("node still running 10 s after the client was destroyed: handles left open\n");
      process.exit(3);
    }, 10000).unref();
  },
  (err) => {
    process.stderr.write((err && err.stack) || String(err));
    process.stderr.write("\n" + JSON.stringify(err && err.$metadata ? describeError(err) : {}) + "\n");
    process.exit(1);
  },
);

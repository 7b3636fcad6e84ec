// Interoperability helper for aggregation/interop_test.go: runs the npm
// package aws-kinesis-agg, an independent implementation of the KPL
// aggregated record format, on records that the Go test writes.
//
//   node kinesis-agg.js deaggregate IN.json   IN: [{partitionKey, data}] Kinesis records
//     prints [[{partitionKey, explicitHashKey, subSequenceNumber, data}]], one list per record
//   node kinesis-agg.js aggregate IN.json     IN: [{partitionKey, explicitHashKey, data}] user records
//     prints [{partitionKey, explicitHashKey, data}], the aggregated Kinesis records
//
// data is base64 throughout. The package is found through NODE_PATH.
'use strict';
const fs = require('fs');
const agg = require('aws-kinesis-agg');

const [mode, file] = process.argv.slice(2);
const input = JSON.parse(fs.readFileSync(file, 'utf8'));

function fail(err) {
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
}

if (mode === 'deaggregate') {
  const out = input.map((rec, i) => {
    let result;
    agg.deaggregateSync({ partitionKey: rec.partitionKey, data: rec.data, sequenceNumber: String(i) }, true, (err, userRecords) => {
      if (err) fail(err);
      result = userRecords.map((u) => ({
        partitionKey: u.partitionKey,
        explicitHashKey: u.explicitPartitionKey === undefined ? '' : u.explicitPartitionKey,
        subSequenceNumber: u.subSequenceNumber === undefined ? null : u.subSequenceNumber,
        data: u.data,
      }));
    });
    return result;
  });
  process.stdout.write(JSON.stringify(out));
} else if (mode === 'aggregate') {
  const records = input.map((u) => {
    const r = { partitionKey: u.partitionKey, data: Buffer.from(u.data, 'base64') };
    if (u.explicitHashKey) r.explicitHashKey = u.explicitHashKey;
    return r;
  });
  const out = [];
  const aggregator = new agg.RecordAggregator();
  aggregator.aggregateRecords(records, true, (err, encoded) => {
    if (err) fail(err);
    out.push({
      partitionKey: encoded.partitionKey,
      explicitHashKey: encoded.ExplicitHashKey || '',
      data: encoded.data.toString('base64'),
    });
  });
  process.stdout.write(JSON.stringify(out));
} else {
  fail('usage: node kinesis-agg.js deaggregate|aggregate IN.json');
}

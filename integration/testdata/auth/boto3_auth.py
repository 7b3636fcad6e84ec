"""boto3_auth.py drives a shoal server that verifies SigV4 (--auth-config)
with boto3, for integration/auth_interop_test.go (TestAuthBoto3).

Usage: python3 boto3_auth.py INPUT.json

The main client takes its credentials from the environment
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, region AWS_DEFAULT_REGION): the
Go test sets them to a principal whose policy allows every operation called
under "ok". INPUT names the endpoint, the stream and consumer, the other
keys (a wrong secret, an unknown key id, a partner account's key, a key with
a session token) and the region the server does not serve. The script
prints one JSON object: what the allowed calls returned ("ok") and, for each
call that must fail, the error botocore parsed ("errors": code, message,
HTTP status, request id). The Go test asserts on it. An unexpected failure
exits non-zero with the traceback on stderr.
"""

import base64
import json
import sys
import time

import boto3
import botocore
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

inp = json.load(open(sys.argv[1]))
endpoint = inp["endpoint"]
stream = inp["streamName"]

# No retries: every error below must come from the first attempt, and an
# allowed call must not pass only on a retry.
no_retry = Config(retries={"mode": "standard", "total_max_attempts": 1})


def client(**kw):
    cfg = kw.pop("config", no_retry)
    return boto3.session.Session().client("kinesis", endpoint_url=endpoint, config=cfg, **kw)


def keyed(key, region=None, token=None):
    return client(
        aws_access_key_id=key["id"],
        aws_secret_access_key=key["secret"],
        aws_session_token=token,
        region_name=region or inp["region"],
    )


def b64(b):
    return base64.b64encode(b).decode()


def failure(fn):
    """Runs fn, which must fail with an API error, and describes the error."""
    try:
        fn()
    except ClientError as e:
        meta = e.response.get("ResponseMetadata", {})
        return {
            "code": e.response["Error"].get("Code"),
            "message": e.response["Error"].get("Message"),
            "status": meta.get("HTTPStatusCode"),
            "requestId": meta.get("RequestId"),
            "attempts": meta.get("RetryAttempts", 0) + 1,
        }
    return {"code": None, "succeeded": True}


def main():
    out = {"boto3": boto3.__version__, "botocore": botocore.__version__, "ok": {}, "errors": {}}
    ok, errors = out["ok"], out["errors"]

    session = boto3.session.Session()
    creds = session.get_credentials()
    ok["credentialMethod"] = creds.method if creds else None
    ok["credentialKeyId"] = creds.access_key if creds else None
    kc = session.client("kinesis", endpoint_url=endpoint, config=no_retry)
    ok["region"] = kc.meta.region_name

    created = kc.create_stream(StreamName=stream, ShardCount=2)
    ok["createStatus"] = created["ResponseMetadata"]["HTTPStatusCode"]
    kc.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    s = kc.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    arn = s["StreamARN"]
    ok["summary"] = {"arn": arn, "status": s["StreamStatus"], "openShards": s["OpenShardCount"]}
    ok["describeShards"] = len(kc.describe_stream(StreamName=stream)["StreamDescription"]["Shards"])
    ok["listStreams"] = kc.list_streams()["StreamNames"]

    one = kc.put_record(StreamName=stream, PartitionKey="boto-key", Data=inp["payload"].encode())
    ok["putRecord"] = {"shardId": one["ShardId"], "sequenceNumber": one["SequenceNumber"]}
    many = kc.put_records(
        StreamARN=arn,
        Records=[{"PartitionKey": "k%d" % i, "Data": bytes([i]) * (i + 1)} for i in range(5)],
    )
    ok["putRecords"] = {"failed": many["FailedRecordCount"], "count": len(many["Records"])}

    shards = kc.list_shards(StreamName=stream)["Shards"]
    ok["shards"] = [sh["ShardId"] for sh in shards]
    it = kc.get_shard_iterator(
        StreamName=stream, ShardId=one["ShardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=one["SequenceNumber"],
    )["ShardIterator"]
    got = kc.get_records(ShardIterator=it, Limit=1)["Records"]
    ok["getRecords"] = [{"sequenceNumber": r["SequenceNumber"], "partitionKey": r["PartitionKey"], "data": b64(r["Data"])} for r in got]

    kc.add_tags_to_stream(StreamName=stream, Tags={"team": "boto", "env": "test"})
    ok["tags"] = {t["Key"]: t["Value"] for t in kc.list_tags_for_stream(StreamName=stream)["Tags"]}
    kc.remove_tags_from_stream(StreamName=stream, TagKeys=["env"])
    ok["tagsAfterRemove"] = {t["Key"]: t["Value"] for t in kc.list_tags_for_stream(StreamName=stream)["Tags"]}

    reg = kc.register_stream_consumer(StreamARN=arn, ConsumerName=inp["consumerName"])["Consumer"]
    cons_arn = reg["ConsumerARN"]
    status = None
    for _ in range(300):  # botocore has no consumer waiter: poll
        status = kc.describe_stream_consumer(ConsumerARN=cons_arn)["ConsumerDescription"]["ConsumerStatus"]
        if status == "ACTIVE":
            break
        time.sleep(0.1)
    listed = [c["ConsumerARN"] for c in kc.list_stream_consumers(StreamARN=arn)["Consumers"]]
    ok["consumer"] = {"arn": cons_arn, "status": status, "listed": listed}

    # SubscribeToShard: the first event of an event stream over HTTP/1.1.
    sub = kc.subscribe_to_shard(ConsumerARN=cons_arn, ShardId=one["ShardId"], StartingPosition={"Type": "TRIM_HORIZON"})
    first = None
    for ev in sub["EventStream"]:
        if "SubscribeToShardEvent" in ev:
            first = ev["SubscribeToShardEvent"]
            break
    sub["EventStream"].close()
    ok["subscribe"] = {
        "status": sub["ResponseMetadata"]["HTTPStatusCode"],
        "records": [b64(r["Data"]) for r in first["Records"]] if first else None,
    }

    # The partner account reaches the stream by its ARN only through a
    # resource policy that names it.
    partner = keyed(inp["partnerKey"])
    errors["partnerBeforePolicy"] = failure(lambda: partner.describe_stream_summary(StreamARN=arn))
    doc = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "partner-reads",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::%s:root" % inp["partnerAccount"]},
            "Action": ["kinesis:DescribeStreamSummary", "kinesis:ListShards"],
            "Resource": arn,
        }],
    })
    ok["putPolicyStatus"] = kc.put_resource_policy(ResourceARN=arn, Policy=doc)["ResponseMetadata"]["HTTPStatusCode"]
    ok["policy"] = kc.get_resource_policy(ResourceARN=arn)["Policy"]
    ok["policySent"] = doc
    ok["partnerSummaryArn"] = partner.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]["StreamARN"]
    kc.delete_resource_policy(ResourceARN=arn)
    ok["policyAfterDelete"] = kc.get_resource_policy(ResourceARN=arn)["Policy"]
    errors["partnerAfterDelete"] = failure(lambda: partner.describe_stream_summary(StreamARN=arn))

    # Temporary credentials: the key's session token passes, another fails.
    tk = inp["sessionKey"]
    ok["sessionTokenListStreams"] = len(keyed(tk, token=tk["token"]).list_streams()["StreamNames"])
    errors["wrongSessionToken"] = failure(lambda: keyed(tk, token="not-" + tk["token"]).list_streams())
    errors["missingSessionToken"] = failure(lambda: keyed(tk).list_streams())

    # The failures every client must see.
    errors["deniedAction"] = failure(lambda: kc.delete_stream(StreamName=stream))
    errors["deniedResource"] = failure(lambda: kc.describe_stream_summary(StreamName=inp["otherStream"]))
    errors["wrongSecret"] = failure(lambda: keyed(inp["wrongSecretKey"]).list_streams())
    errors["unknownKey"] = failure(lambda: keyed(inp["unknownKey"]).list_streams())
    errors["unsigned"] = failure(lambda: client(config=no_retry.merge(Config(signature_version=UNSIGNED)), region_name=inp["region"]).list_streams())
    errors["otherRegion"] = failure(lambda: client(region_name=inp["otherRegion"]).list_streams())
    return out


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
    sys.stdout.write("\n")

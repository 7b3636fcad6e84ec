package wire

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/go-json-experiment/json"
)

// checkDecode holds DecodePutRecordsJSON to the general decoder: when it
// handles body, its result must be the general decoder's.
func checkDecode(t *testing.T, body []byte) (handled bool) {
	t.Helper()
	var fast PutRecordsInput
	handled = DecodePutRecordsJSON(body, &fast)
	if !handled {
		if !reflect.DeepEqual(fast, PutRecordsInput{}) {
			t.Fatalf("declined %q but left %+v", body, fast)
		}
		return false
	}
	var want PutRecordsInput
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatalf("fast decoder accepted %q, the general one failed: %v", body, err)
	}
	if !reflect.DeepEqual(fast, want) {
		t.Fatalf("decode %q:\nfast    %s\ngeneral %s", body, dump(fast), dump(want))
	}
	for i := range fast.Records {
		if d := fast.Records[i].Data; cap(d) != len(d) {
			t.Fatalf("record %d: Data has spare capacity %d", i, cap(d)-len(d))
		}
	}
	return true
}

func dump(in PutRecordsInput) string {
	s := fmt.Sprintf("name=%v arn=%v id=%v dry=%v records=%v:", deref(in.StreamName), deref(in.StreamARN), deref(in.StreamID), in.DryRun != nil && *in.DryRun, in.Records == nil)
	for _, r := range in.Records {
		s += fmt.Sprintf(" {%q %v %v}", r.Data, deref(r.PartitionKey), deref(r.ExplicitHashKey))
	}
	return s
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

var decodeCases = []string{
	`{"StreamName":"s","Records":[{"Data":"AAEC","PartitionKey":"k"}]}`,
	` { "Records" : [ { "PartitionKey" : "k" , "Data" : "AA==" , "ExplicitHashKey" : "12" } , {"Data":"AAA=","PartitionKey":"k2"} ] , "StreamARN" : "arn:aws:kinesis:us-east-1:000000000000:stream/s" , "DryRun" : true } `,
	`{"StreamName":"s","StreamId":"x","DryRun":false,"Records":[{"Data":"/+8=","PartitionKey":null,"ExplicitHashKey":null}]}`,
	`{"StreamName":null,"StreamARN":null,"DryRun":null,"Records":[{"Data":"AAAA","PartitionKey":"k"}]}`,
	"{\"StreamName\":\"s\",\n\t\"Records\":[{\"Data\":\"AAAA\",\r\n\"PartitionKey\":\"k\"}]}",
	`{"StreamName":"s","Records":[{"Data":"AB==","PartitionKey":"k"}]}`, // non-zero pad bits: both accept
	// Declined: the general decoder decides.
	`{"StreamName":"s","Records":[]}`,
	`{"StreamName":"s","Records":null}`,
	`{"StreamName":"s"}`,
	`{}`,
	`{"StreamName":"s","Records":[{"Data":"","PartitionKey":"k"}]}`,
	`{"StreamName":"s","Records":[{"Data":null,"PartitionKey":"k"}]}`,
	`{"StreamName":"s","Records":[{"PartitionKey":"k"}]}`,
	`{"StreamName":"s","Records":[{}]}`,
	`{"StreamName":"s","Records":[{"Data":"AA","PartitionKey":"k"}]}`,
	`{"StreamName":"s","Records":[{"Data":"A===","PartitionKey":"k"}]}`,
	`{"StreamName":"s","Records":[{"Data":"AA==AA==","PartitionKey":"k"}]}`,
	`{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k\u00e9"}]}`,
	`{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k\""}]}`,
	`{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"ké"}]}`,
	`{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k","PartitionKey":"j"}]}`,
	`{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":null,"PartitionKey":"j"}]}`,
	`{"StreamName":"s","StreamName":"t","Records":[{"Data":"AAAA","PartitionKey":"k"}]}`,
	`{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k"}],"Records":[{"Data":"AAAA","PartitionKey":"k"}]}`,
	`{"StreamName":"s","Records":[{"Data":"AAAA","partitionkey":"k"}]}`,
	`{"streamname":"s","Records":[{"Data":"AAAA","PartitionKey":"k"}]}`,
	`{"StreamName":"s","Other":1,"Records":[{"Data":"AAAA","PartitionKey":"k"}]}`,
	`{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k"}]}x`,
	`{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k"}]}{}`,
	`{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k"},]}`,
	`{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k",}]}`,
	`{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k"}],}`,
	`{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k"}]`,
	`{"StreamName":"s","DryRun":1,"Records":[{"Data":"AAAA","PartitionKey":"k"}]}`,
	`{"StreamName":"s","DryRun":"true","Records":[{"Data":"AAAA","PartitionKey":"k"}]}`,
	`{"StreamName":1,"Records":[{"Data":"AAAA","PartitionKey":"k"}]}`,
	`{"StreamName":"s","Records":[{"Data":"AA\nAA","PartitionKey":"k"}]}`,
	`{"StreamName":"s","Records":{"Data":"AAAA","PartitionKey":"k"}}`,
	`[]`,
	``,
	`null`,
}

func TestDecodePutRecordsJSONMatchesGeneral(t *testing.T) {
	for i, c := range decodeCases {
		handled := checkDecode(t, []byte(c))
		if want := i < 6; handled != want {
			t.Errorf("case %d %q: handled %v, want %v", i, c, handled, want)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 300; i++ {
		body := randomPutRecords(r)
		if !checkDecode(t, body) {
			t.Fatalf("declined an SDK-shaped body %q", body)
		}
	}
}

func randomPutRecords(r *rand.Rand) []byte {
	name := fmt.Sprint("stream-", r.IntN(100))
	in := PutRecordsInput{StreamRef: StreamRef{StreamName: &name}}
	if r.IntN(4) == 0 {
		dry := r.IntN(2) == 0
		in.DryRun = &dry
	}
	for n := 1 + r.IntN(20); n > 0; n-- {
		d := make([]byte, r.IntN(40))
		for j := range d {
			d[j] = byte(r.Uint32())
		}
		e := PutRecordsRequestEntry{Data: d}
		if r.IntN(8) != 0 {
			k := fmt.Sprint("key-", r.IntN(1000))
			e.PartitionKey = &k
		}
		if r.IntN(4) == 0 {
			h := fmt.Sprint(r.Uint64())
			e.ExplicitHashKey = &h
		}
		in.Records = append(in.Records, e)
	}
	if len(in.Records[0].Data) == 0 {
		in.Records[0].Data = []byte{1}
	}
	for i := range in.Records {
		if len(in.Records[i].Data) == 0 {
			in.Records[i].Data = []byte{byte(i)}
		}
	}
	b, err := json.Marshal(&in)
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzDecodePutRecordsJSON(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkDecode(t, body) })
}

// checkEncode holds AppendPutRecordsOutputJSON to the general encoder.
func checkEncode(t *testing.T, out *PutRecordsOutput) {
	t.Helper()
	want, err := json.Marshal(out)
	if err != nil { // invalid UTF-8: the fast encoder must leave it to the general one
		if _, ok := AppendPutRecordsOutputJSON(nil, out); ok {
			t.Fatalf("encoded %+v, which the general encoder refuses: %v", out, err)
		}
		return
	}
	var buf bytes.Buffer
	if err := json.MarshalWrite(&buf, out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("Marshal and MarshalWrite differ: %q, %q", want, buf.Bytes())
	}
	got, ok := AppendPutRecordsOutputJSON([]byte("prefix"), out)
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("lost the prefix: %q", got)
	}
	if !ok {
		if len(got) != len("prefix") {
			t.Fatalf("declined but wrote %q", got)
		}
		return
	}
	if got := got[len("prefix"):]; !bytes.Equal(got, want) {
		t.Fatalf("encode:\nfast    %s\ngeneral %s", got, want)
	}
}

func TestAppendPutRecordsOutputJSONMatchesGeneral(t *testing.T) {
	checkEncode(t, &PutRecordsOutput{})
	checkEncode(t, &PutRecordsOutput{Records: []PutRecordsResultEntry{}})
	checkEncode(t, &PutRecordsOutput{EncryptionType: "KMS", Records: []PutRecordsResultEntry{{}}})
	checkEncode(t, &PutRecordsOutput{Records: []PutRecordsResultEntry{{ErrorMessage: `quote " here`}}})
	checkEncode(t, &PutRecordsOutput{Records: []PutRecordsResultEntry{{ErrorMessage: "<&> é \x7f \u2028"}}})
	r := rand.New(rand.NewPCG(7, 8))
	strs := []string{"", "", "shardId-000000000001", "49590338271490256608559692538361571095921575989136588898", "ProvisionedThroughputExceededException", "Rate exceeded for shard shardId-000000000001 in stream s under account 000000000000.", "a\\b", "tab\t", "<html>&"}
	for i := 0; i < 500; i++ {
		out := &PutRecordsOutput{FailedRecordCount: int32(r.IntN(1000)) - 10}
		if r.IntN(3) == 0 {
			out.EncryptionType = strs[r.IntN(len(strs))]
		}
		for n := r.IntN(10); n > 0; n-- {
			out.Records = append(out.Records, PutRecordsResultEntry{
				SequenceNumber: strs[r.IntN(len(strs))], ShardID: strs[r.IntN(len(strs))],
				ErrorCode: strs[r.IntN(len(strs))], ErrorMessage: strs[r.IntN(len(strs))],
			})
		}
		checkEncode(t, out)
	}
}

func FuzzAppendPutRecordsOutputJSON(f *testing.F) {
	f.Add(int32(0), "49590338271490256608559692538361571095921575989136588898", "shardId-000000000001", "", "", "")
	f.Add(int32(1), "", "", "ProvisionedThroughputExceededException", "Rate exceeded", "KMS")
	f.Fuzz(func(t *testing.T, failed int32, seq, shard, code, msg, enc string) {
		checkEncode(t, &PutRecordsOutput{FailedRecordCount: failed, EncryptionType: enc, Records: []PutRecordsResultEntry{
			{SequenceNumber: seq, ShardID: shard}, {ErrorCode: code, ErrorMessage: msg}, {SequenceNumber: seq, ErrorMessage: msg},
		}})
	})
}

// TestTimestampMarshalJSONTo checks that the encoder's path through
// MarshalJSONTo writes what MarshalJSON returns.
func TestTimestampMarshalJSONTo(t *testing.T) {
	for _, ms := range []int64{0, 1, -1, 999, -999, 1000, -1001, 1762440000123, 1762440000000, -62135596800000, 1 << 50} {
		ts := Timestamp(ms)
		old, _ := ts.MarshalJSON()
		got, err := json.Marshal(struct {
			T Timestamp `json:"T"`
		}{ts})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"T":` + string(old) + `}`; string(got) != want {
			t.Fatalf("%d: %s, want %s", ms, got, want)
		}
	}
}

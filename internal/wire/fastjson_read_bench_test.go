package wire

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/shoalstream/shoal/internal/testutil/benchpair"
)

// readRecords returns n records of size bytes as a GetRecords response
// carries them.
func readRecords(n, size int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{
			SequenceNumber:              "170141183460469231731687303715884105728",
			ApproximateArrivalTimestamp: 1762440000123,
			Data:                        bytes.Repeat([]byte{byte(i)}, size),
			PartitionKey:                fmt.Sprint("bench-", i%10000),
		}
	}
	return recs
}

// BenchmarkEncodeGetRecordsPaired encodes a GetRecords response of 10,000
// records of 100 B with the general encoder and with
// AppendGetRecordsOutputJSON, alternating in one loop (benchpair), into a
// reused buffer as the server does. It reports each side's ns/record and
// the fast encoder's cost relative to the general one (fast-vs-general-%,
// negative is faster).
func BenchmarkEncodeGetRecordsPaired(b *testing.B) {
	const n = 10000
	it := "AAAAAAAAAAGRp7R5b2xlLmJlbmNoAAAAAA=="
	out := &GetRecordsOutput{Records: readRecords(n, 100), NextShardIterator: &it}
	var general, fast bytes.Buffer
	b.ReportAllocs()
	spent := benchpair.Time(b, func() error {
		general.Reset()
		return json.MarshalWrite(&general, out)
	}, func() error {
		fast.Reset()
		fast.Grow(GetRecordsOutputJSONSize(out))
		buf, ok := AppendGetRecordsOutputJSON(fast.AvailableBuffer(), out)
		if !ok {
			return fmt.Errorf("declined")
		}
		_, err := fast.Write(buf)
		return err
	})
	if !bytes.Equal(general.Bytes(), fast.Bytes()) {
		b.Fatal("the encoders differ")
	}
	benchpair.Report(b, spent, "fast-vs-general-%", "general-us/op", "fast-us/op")
	b.ReportMetric(float64(spent[0].Nanoseconds())/float64(b.N)/n, "general-ns/record")
	b.ReportMetric(float64(spent[1].Nanoseconds())/float64(b.N)/n, "fast-ns/record")
}

package sigv4_test

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

// BenchmarkVerify verifies an SDK-signed request as the server receives it:
// a PutRecords-sized body (70 KB) and a small one, in the header form and the
// presigned form, and the header form with a session token. SHA256 is the body hash alone, the floor of any verifier
// of a signed payload.
func BenchmarkVerify(b *testing.B) {
	for _, size := range []int{200, 70 << 10} {
		body := putRecordsBody(size)
		for _, form := range []string{"header", "header-token", "presigned"} {
			b.Run(fmt.Sprintf("%s/%dB", form, len(body)), func(b *testing.B) {
				req := kinesisRequest(b, "https://"+testHost+"/", "PutRecords", jsonType, body)
				switch form {
				case "header":
					sdkSign(b, req, longTerm, hexSHA(body), "kinesis", testRegion, 0)
				case "header-token":
					sdkSign(b, req, temporary, hexSHA(body), "kinesis", testRegion, 0)
				default:
					req = sdkPresign(b, req, body, longTerm, "300")
				}
				r, got := serverSide(b, req)
				v := verifier(signTime.Add(time.Second))
				if _, err := v.Verify(r, got); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(got)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(r, got); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("SHA256/%dB", len(body)), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				sha256.Sum256(body)
			}
		})
	}
}

// BenchmarkVerifyParallel is the header form under concurrency, where the
// signing-key cache's lock is shared.
func BenchmarkVerifyParallel(b *testing.B) {
	body := putRecordsBody(200)
	req := kinesisRequest(b, "https://"+testHost+"/", "PutRecord", jsonType, body)
	sdkSign(b, req, longTerm, hexSHA(body), "kinesis", testRegion, 0)
	r, got := serverSide(b, req)
	v := verifier(signTime)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(r, got); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

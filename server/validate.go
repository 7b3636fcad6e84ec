package server

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// validator collects the model-constraint violations of one request and
// reports them the way the Kinesis service does:
//
//	2 validation errors detected: Value null at 'streamName' failed to
//	satisfy constraint: Member must not be null; ...
type validator struct {
	errs []string
}

func (v *validator) add(value, member, constraint string) {
	v.errs = append(v.errs, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: %s", value, member, constraint))
}

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	s := "s"
	if len(v.errs) == 1 {
		s = ""
	}
	return ErrValidation.With("%d validation error%s detected: %s", len(v.errs), s, strings.Join(v.errs, "; "))
}

func quote(s string) string { return "'" + s + "'" }

// required checks that a member is present.
func (v *validator) required(member string, present bool) bool {
	if !present {
		v.add("null", member, "Member must not be null")
	}
	return present
}

// str checks an optional string's length (in characters) and pattern.
func (v *validator) str(member string, s *string, minLen, maxLen int, re *regexp.Regexp) {
	if s == nil {
		return
	}
	n := utf8.RuneCountInString(*s)
	if n < minLen {
		v.add(quote(*s), member, fmt.Sprintf("Member must have length greater than or equal to %d", minLen))
	}
	if maxLen > 0 && n > maxLen {
		v.add(quote(*s), member, fmt.Sprintf("Member must have length less than or equal to %d", maxLen))
	}
	if re != nil && n >= minLen && !re.MatchString(*s) {
		v.add(quote(*s), member, "Member must satisfy regular expression pattern: "+strings.TrimSuffix(strings.TrimPrefix(re.String(), "^(?:"), ")$"))
	}
}

// reqStr checks a required string.
func (v *validator) reqStr(member string, s *string, minLen, maxLen int, re *regexp.Regexp) {
	if v.required(member, s != nil) {
		v.str(member, s, minLen, maxLen, re)
	}
}

// intRange checks an optional integer's bounds.
func (v *validator) intRange(member string, n *int32, lo, hi int64) {
	if n == nil {
		return
	}
	if int64(*n) < lo {
		v.add(fmt.Sprint(*n), member, fmt.Sprintf("Member must have value greater than or equal to %d", lo))
	}
	if int64(*n) > hi {
		v.add(fmt.Sprint(*n), member, fmt.Sprintf("Member must have value less than or equal to %d", hi))
	}
}

// enum checks an optional enum value.
func (v *validator) enum(member string, s *string, values ...string) {
	if s == nil {
		return
	}
	for _, x := range values {
		if *s == x {
			return
		}
	}
	v.add(quote(*s), member, "Member must satisfy enum value set: ["+strings.Join(values, ", ")+"]")
}

// blobMax checks a blob's length.
func (v *validator) blobMax(member string, b []byte, max int) {
	if len(b) > max {
		v.add("java.nio.HeapByteBuffer[pos=0 lim="+fmt.Sprint(len(b))+" cap="+fmt.Sprint(len(b))+"]", member,
			fmt.Sprintf("Member must have length less than or equal to %d", max))
	}
}

// anchored compiles a model pattern, which must match the whole value.
func anchored(pattern string) *regexp.Regexp {
	return regexp.MustCompile("^(?:" + pattern + ")$")
}

// Model patterns and bounds (Kinesis_20131202).
var (
	streamNameRE      = anchored(`[a-zA-Z0-9_.-]+`)
	streamARNRE       = anchored(`arn:aws.*:kinesis:.*:\d{12}:stream/\S+`)
	shardIDRE         = anchored(`[a-zA-Z0-9_.-]+`)
	hashKeyRE         = anchored(`0|([1-9]\d{0,38})`)
	sequenceNumberRE  = anchored(`0|([1-9]\d{0,128})`)
	tagKeyMaxLen      = 128
	tagValueMaxLen    = 256
	resourceARNRE     = anchored(`arn:aws.*:kinesis:.*:\d{12}:.+`)
	maxStreamNameLen  = 128
	maxShardIDLen     = 128
	maxStreamARNLen   = 2048
	maxPartitionKey   = 256
	maxIteratorLen    = 512
	maxNextTokenLen   = 1048576
	maxDataBytesModel = 10 << 20 // largest record payload any stream accepts
)

// streamRef validates StreamName and StreamARN members.
func (v *validator) streamRef(name, arn *string) {
	v.str("streamName", name, 1, maxStreamNameLen, streamNameRE)
	v.str("streamARN", arn, 1, maxStreamARNLen, streamARNRE)
}

// tags validates a tag map.
func (v *validator) tags(member string, tags map[string]string) {
	for k, val := range tags {
		v.str(member+".key", &k, 1, tagKeyMaxLen, nil)
		v.str(member+".value", &val, 0, tagValueMaxLen, nil)
	}
}

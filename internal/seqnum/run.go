package seqnum

// Len is the length of every sequence number's decimal form: the top bit
// is always set, so each has exactly 39 digits.
const Len = 39

// AppendNext appends to b the decimal form of the number that follows
// prev within its batch: prev (a sequence number as String writes it, Len
// digits) with Index+1, that is prev + 65536. prev's Index must be below 0xFFFF, so that the
// increment stays within the index bits; the caller checks it (a batch
// holds at most 0xFFFF records). It costs a copy and a short decimal
// addition instead of a 128-bit division, which makes formatting the
// consecutive numbers of a batch (a PutRecords response, a read) cheap.
// prev may alias b's spare capacity only if it lies before len(b).
func AppendNext(b []byte, prev []byte) []byte {
	n := len(b)
	b = append(b, prev...)
	d := b[n:]
	// Add 65536 (indexStep) to the last five digits, then carry.
	var c byte
	for k, a := range [...]byte{6, 3, 5, 5, 6} {
		i := len(d) - 1 - k
		v := d[i] + a + c
		c = 0
		if v > '9' {
			v -= 10
			c = 1
		}
		d[i] = v
	}
	for i := len(d) - 6; c != 0 && i >= 0; i-- {
		if d[i] == '9' {
			d[i] = '0'
		} else {
			d[i]++
			c = 0
		}
	}
	return b
}

// AppendRun appends the decimal forms of count consecutive numbers of one
// batch: n, then n with Index+1, Index+2, ... Each takes Len bytes, so the
// i-th is b[len(b)+i*Len:][:Len] of the result. An Index that would pass
// 0xFFFF wraps to 0, as Number{Index: n.Index + uint16(i)} does.
func AppendRun(b []byte, n Number, count int) []byte {
	for i := range count {
		if i > 0 && n.Index != 0 {
			b = AppendNext(b, b[len(b)-Len:])
		} else {
			b, _ = n.AppendText(b)
		}
		n.Index++
	}
	return b
}

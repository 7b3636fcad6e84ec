package server

// SampleDiskNow takes one sample of the disk guard at once, as its
// goroutine does every Config.DiskCheckInterval: the tests move the disk
// with Config.DiskUsage and sample by hand, with no clock involved. It
// does nothing when the guard is off.
func (s *Server) SampleDiskNow() { s.sampleDisk() }

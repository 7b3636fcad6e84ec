package consumer

import (
	"strings"
	"testing"
	"time"
)

type fixedFailover time.Duration

func (f fixedFailover) FailoverTime() time.Duration { return time.Duration(f) }

func TestConfigDefaults(t *testing.T) {
	c := Config{ApplicationName: "a", StreamName: "s"}.withDefaults(nil)
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"FailoverTime", c.FailoverTime, 10 * time.Second},
		{"TakeInterval", c.TakeInterval, 20 * time.Second},
		{"MaxLeasesToStealAtOneTime", c.MaxLeasesToStealAtOneTime, 1},
		{"ShardSyncInterval", c.ShardSyncInterval, time.Minute},
		{"MaxRecords", c.MaxRecords, 10000},
		{"IdleTimeBetweenReads", c.IdleTimeBetweenReads, time.Second},
		{"TaskBackoff", c.TaskBackoff, 500 * time.Millisecond},
		{"MaxBackoff", c.MaxBackoff, 10 * time.Second},
		{"ShutdownTimeout", c.ShutdownTimeout, 30 * time.Second},
		{"InitialPosition", c.InitialPosition, Latest},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if c.WorkerID == "" || c.Logger == nil || c.Metrics == nil {
		t.Errorf("WorkerID %q Logger %v Metrics %v", c.WorkerID, c.Logger, c.Metrics)
	}
	// The Store's failover time is adopted when the Config leaves it zero.
	c = Config{ApplicationName: "a", StreamName: "s"}.withDefaults(fixedFailover(3 * time.Second))
	if c.FailoverTime != 3*time.Second || c.TakeInterval != 6*time.Second {
		t.Errorf("failover %v take %v", c.FailoverTime, c.TakeInterval)
	}
}

func TestConfigValidateReportsEverything(t *testing.T) {
	c := Config{
		InitialPosition: AtTimestamp,
		FailoverTime:    time.Millisecond,
		MaxRecords:      10001,
		TaskBackoff:     time.Second,
		MaxBackoff:      time.Millisecond,
		TakeInterval:    -1,
		WorkerID:        strings.Repeat("x", 1025),
	}.withDefaults(nil)
	err := c.validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"ApplicationName is required", "StreamName or StreamARN", "InitialTimestamp", "FailoverTime",
		"MaxRecords 10001", "MaxBackoff", "negative TakeInterval", "WorkerID longer",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err := (Config{ApplicationName: "a", StreamName: "s", InitialPosition: 7}).withDefaults(nil).validate(); err == nil || !strings.Contains(err.Error(), "InitialPosition(7)") {
		t.Errorf("unknown position: %v", err)
	}
	if err := (Config{ApplicationName: "a", StreamName: "s", Retrieval: 7}).withDefaults(nil).validate(); err == nil || !strings.Contains(err.Error(), "Retrieval(7)") {
		t.Errorf("unknown retrieval: %v", err)
	}
}

func TestNewRejectsNil(t *testing.T) {
	_, err := New(nil, nil, nil, Config{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"nil Kinesis client", "nil Store", "nil ProcessorFactory", "ApplicationName"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

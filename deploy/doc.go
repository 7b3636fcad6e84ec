// Package deploy holds no Go code: it is the home of shoal's monitoring
// files and of the test that keeps them honest.
//
//	grafana/shoal.json       a Grafana dashboard (JSON model) of the server
//	                         and the producer, consumer and fan-out libraries
//	prometheus/alerts.yml    Prometheus alerting rules (groups shoal-server
//	                         and shoal-libraries)
//	README.md                how to load them; what each alert means and
//	                         why its threshold is what it is
//
// The test (go test ./deploy) parses both files and checks every metric
// they name against what the code exports: the Descs of the collectors
// that server/prommetrics, producer/prommetrics, consumer/prommetrics and
// fanout/prommetrics register, of the Go and process collectors that the
// admin listener of "shoal server" adds, and the metrics declared in
// cmd/shoal (read from its source, as package main cannot be imported). It
// also checks the label names the expressions use, and that every alert
// has a severity label, a summary annotation and a section in README.md. A
// renamed metric thus fails the test here rather than leaving an empty
// panel or an alert that can never fire.
package deploy

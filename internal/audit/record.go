package audit

import (
	"crypto/tls"
	"strings"
	"time"

	"github.com/shoalstream/shoal/internal/randid"
)

// Constant values of a Kinesis CloudTrail record.
const (
	EventVersion = "1.11"                  // Record.EventVersion
	EventSource  = "kinesis.amazonaws.com" // Record.EventSource
	EventType    = "AwsApiCall"            // Record.EventType

	CategoryManagement = "Management" // Record.EventCategory of control-plane calls
	CategoryData       = "Data"       // Record.EventCategory of IsDataEvent operations

	ResourceTypeStream         = "AWS::Kinesis::Stream"         // Resource.Type
	ResourceTypeStreamConsumer = "AWS::Kinesis::StreamConsumer" // Resource.Type (SubscribeToShard)
)

// eventTimeLayout is CloudTrail's eventTime: UTC, whole seconds.
const eventTimeLayout = "2006-01-02T15:04:05Z"

// Record is one CloudTrail-shaped event. Its JSON form (MarshalJSON, and each
// line the Writer writes) has CloudTrail's member names and order; eventTime
// is UTC with whole seconds ("2006-01-02T15:04:05Z"); errorCode,
// errorMessage, resources and tlsDetails are left out when empty, and
// requestParameters and responseElements are null when nil. The json tags
// below serve decoding: a line unmarshals back into a Record.
type Record struct {
	EventVersion       string         `json:"eventVersion"`
	UserIdentity       UserIdentity   `json:"userIdentity"`
	EventTime          time.Time      `json:"eventTime"`
	EventSource        string         `json:"eventSource"`
	EventName          string         `json:"eventName"`
	AWSRegion          string         `json:"awsRegion"`
	SourceIPAddress    string         `json:"sourceIPAddress"`
	UserAgent          string         `json:"userAgent"`
	ErrorCode          string         `json:"errorCode,omitempty"`
	ErrorMessage       string         `json:"errorMessage,omitempty"`
	RequestParameters  map[string]any `json:"requestParameters"`
	ResponseElements   map[string]any `json:"responseElements"`
	RequestID          string         `json:"requestID"`
	EventID            string         `json:"eventID"`
	ReadOnly           bool           `json:"readOnly"`
	Resources          []Resource     `json:"resources,omitempty"`
	EventType          string         `json:"eventType"`
	ManagementEvent    bool           `json:"managementEvent"`
	RecipientAccountID string         `json:"recipientAccountId"`
	EventCategory      string         `json:"eventCategory"`
	TLSDetails         *TLSDetails    `json:"tlsDetails,omitempty"`
}

// UserIdentity is the caller. Type and principalId are always written (as
// CloudTrail does, principalId may be ""); the other members only when set.
// With authentication off, use AnonymousIdentity.
type UserIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
	AccessKeyID string `json:"accessKeyId,omitempty"`
	UserName    string `json:"userName,omitempty"`
}

// AnonymousIdentity is the userIdentity of a request the server did not
// authenticate (authentication off): {"type":"AWSAccount","principalId":"",
// "accountId":"ANONYMOUS_PRINCIPAL"}, the form CloudTrail gives S3's
// anonymous requests, so SIEM parsers already know it. An access key id the
// client sent is deliberately not recorded: nothing verified it.
func AnonymousIdentity() UserIdentity {
	return UserIdentity{Type: "AWSAccount", AccountID: "ANONYMOUS_PRINCIPAL"}
}

// Resource is one resource a data event acted on.
type Resource struct {
	AccountID string `json:"accountId"`
	Type      string `json:"type"` // ResourceTypeStream or ResourceTypeStreamConsumer
	ARN       string `json:"ARN"`
}

// TLSDetails describes the connection a request came on.
type TLSDetails struct {
	TLSVersion               string `json:"tlsVersion"`  // "TLSv1.2", "TLSv1.3"
	CipherSuite              string `json:"cipherSuite"` // OpenSSL-style for TLS 1.2, as CloudTrail
	ClientProvidedHostHeader string `json:"clientProvidedHostHeader"`
}

// NewRecord returns a record of operation op with the constant members and
// those that follow from op set: EventVersion, EventSource, EventType,
// EventName, ReadOnly, ManagementEvent and EventCategory. EventTime and
// EventID are left to the Writer.
func NewRecord(op string) *Record {
	r := &Record{EventName: op}
	r.classify()
	return r
}

// classify sets the constant members when empty and, when EventCategory is
// empty (the caller did not classify the event), EventCategory,
// ManagementEvent and ReadOnly from EventName.
func (r *Record) classify() {
	if r.EventVersion == "" {
		r.EventVersion = EventVersion
	}
	if r.EventSource == "" {
		r.EventSource = EventSource
	}
	if r.EventType == "" {
		r.EventType = EventType
	}
	if r.EventCategory == "" {
		data := IsDataEvent(r.EventName)
		r.EventCategory = CategoryManagement
		if data {
			r.EventCategory = CategoryData
		}
		r.ManagementEvent = !data
		r.ReadOnly = ReadOnly(r.EventName)
	}
}

// IsDataEvent reports whether Kinesis operation op is a CloudTrail data event
// (PutRecord, PutRecords, GetRecords, GetShardIterator, SubscribeToShard);
// every other operation is a management event.
func IsDataEvent(op string) bool {
	switch op {
	case "PutRecord", "PutRecords", "GetRecords", "GetShardIterator", "SubscribeToShard":
		return true
	}
	return false
}

// ReadOnly reports whether Kinesis operation op only reads: Describe*, List*,
// Get* and SubscribeToShard.
func ReadOnly(op string) bool {
	return strings.HasPrefix(op, "Describe") || strings.HasPrefix(op, "List") ||
		strings.HasPrefix(op, "Get") || op == "SubscribeToShard"
}

// TLSDetailsOf describes the connection cs for tlsDetails, with the Host
// header host; nil when cs is nil (plain HTTP). Versions read "TLSv1.2" and
// cipher suites are named as CloudTrail names them: OpenSSL names for TLS 1.2
// ("ECDHE-RSA-AES128-GCM-SHA256"), the IANA names for TLS 1.3.
func TLSDetailsOf(cs *tls.ConnectionState, host string) *TLSDetails {
	if cs == nil {
		return nil
	}
	version := tls.VersionName(cs.Version) // "TLS 1.3"
	if v, ok := strings.CutPrefix(version, "TLS "); ok {
		version = "TLSv" + v
	}
	suite, ok := openSSLSuites[cs.CipherSuite]
	if !ok {
		suite = tls.CipherSuiteName(cs.CipherSuite)
	}
	return &TLSDetails{TLSVersion: version, CipherSuite: suite, ClientProvidedHostHeader: host}
}

// openSSLSuites names the TLS 1.2 suites crypto/tls implements the OpenSSL
// way; TLS 1.3 suites have one name in both schemes.
var openSSLSuites = map[uint16]string{
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:         "ECDHE-RSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:         "ECDHE-RSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:       "ECDHE-ECDSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:       "ECDHE-ECDSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:   "ECDHE-RSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA:            "ECDHE-RSA-AES128-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA:            "ECDHE-RSA-AES256-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:          "ECDHE-ECDSA-AES128-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA:          "ECDHE-ECDSA-AES256-SHA",
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256:               "AES128-GCM-SHA256",
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384:               "AES256-GCM-SHA384",
	tls.TLS_RSA_WITH_AES_128_CBC_SHA:                  "AES128-SHA",
	tls.TLS_RSA_WITH_AES_256_CBC_SHA:                  "AES256-SHA",
}

// newEventID returns a random version 4 UUID, as CloudTrail's event GUIDs.
func newEventID() string { return randid.UUID() }

// wireRecord is Record as written: the same members in the same order, with
// eventTime formatted the CloudTrail way.
type wireRecord struct {
	EventVersion       string         `json:"eventVersion"`
	UserIdentity       UserIdentity   `json:"userIdentity"`
	EventTime          string         `json:"eventTime"`
	EventSource        string         `json:"eventSource"`
	EventName          string         `json:"eventName"`
	AWSRegion          string         `json:"awsRegion"`
	SourceIPAddress    string         `json:"sourceIPAddress"`
	UserAgent          string         `json:"userAgent"`
	ErrorCode          string         `json:"errorCode,omitempty"`
	ErrorMessage       string         `json:"errorMessage,omitempty"`
	RequestParameters  map[string]any `json:"requestParameters"`
	ResponseElements   map[string]any `json:"responseElements"`
	RequestID          string         `json:"requestID"`
	EventID            string         `json:"eventID"`
	ReadOnly           bool           `json:"readOnly"`
	Resources          []Resource     `json:"resources,omitempty"`
	EventType          string         `json:"eventType"`
	ManagementEvent    bool           `json:"managementEvent"`
	RecipientAccountID string         `json:"recipientAccountId"`
	EventCategory      string         `json:"eventCategory"`
	TLSDetails         *TLSDetails    `json:"tlsDetails,omitempty"`
}

func (r *Record) wire() wireRecord {
	return wireRecord{
		EventVersion:       r.EventVersion,
		UserIdentity:       r.UserIdentity,
		EventTime:          r.EventTime.UTC().Format(eventTimeLayout),
		EventSource:        r.EventSource,
		EventName:          r.EventName,
		AWSRegion:          r.AWSRegion,
		SourceIPAddress:    r.SourceIPAddress,
		UserAgent:          r.UserAgent,
		ErrorCode:          r.ErrorCode,
		ErrorMessage:       r.ErrorMessage,
		RequestParameters:  r.RequestParameters,
		ResponseElements:   r.ResponseElements,
		RequestID:          r.RequestID,
		EventID:            r.EventID,
		ReadOnly:           r.ReadOnly,
		Resources:          r.Resources,
		EventType:          r.EventType,
		ManagementEvent:    r.ManagementEvent,
		RecipientAccountID: r.RecipientAccountID,
		EventCategory:      r.EventCategory,
		TLSDetails:         r.TLSDetails,
	}
}

// MarshalJSON writes r as CloudTrail does (see Record). It fills in nothing:
// defaults are the Writer's job.
func (r Record) MarshalJSON() ([]byte, error) {
	var buf lineEncoder
	if err := buf.encode(&r); err != nil {
		return nil, err
	}
	return buf.bytes()[:len(buf.bytes())-1], nil // without the newline
}

package server

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/shoalstream/shoal/internal/wire"
)

// Tags of streams and of their enhanced fan-out consumers: AddTagsToStream,
// RemoveTagsFromStream and ListTagsForStream, and the ARN-addressed
// TagResource, UntagResource and ListTagsForResource.

// taggable is a resource that carries tags: a stream, or one of its
// enhanced fan-out consumers. Its tags live in the stream's metadata and
// change under st.mu.
type taggable struct {
	st *stream
	c  *consumer // nil: the stream itself
}

// tagsLocked returns the resource's tag map, creating it if needed. st.mu
// is held.
func (r taggable) tagsLocked() *map[string]string {
	m := &r.st.tags
	if r.c != nil {
		m = &r.c.tags
	}
	if *m == nil {
		*m = map[string]string{}
	}
	return m
}

func (r taggable) String() string {
	if r.c != nil {
		return "consumer " + r.c.name + " of stream " + r.st.name
	}
	return "stream " + r.st.name
}

func (s *Server) addTags(r taggable, tags map[string]string) error {
	return s.mutateStream(r.st, true, func() (func(), error) {
		m := r.tagsLocked()
		added := 0
		for k := range tags {
			if _, ok := (*m)[k]; !ok {
				added++
			}
		}
		if len(*m)+added > maxTagsPerStream {
			return nil, ErrLimitExceeded.With("Failed to add tags to %s under account %s because a given resource cannot have more than %d tags.", r, r.st.account, maxTagsPerStream)
		}
		old := cloneTags(*m)
		for k, val := range tags {
			(*m)[k] = val
		}
		return func() { *m = old }, nil
	})
}

func (s *Server) removeTags(r taggable, keys []string) error {
	return s.mutateStream(r.st, true, func() (func(), error) {
		m := r.tagsLocked()
		old := cloneTags(*m)
		for _, k := range keys {
			delete(*m, k)
		}
		return func() { *m = old }, nil
	})
}

func cloneTags(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (v *validator) tagMap(member string, tags map[string]string, present bool) {
	if v.required(member, present) {
		if len(tags) < 1 {
			v.add("{}", member, "Member must have length greater than or equal to 1")
		}
		if len(tags) > 200 {
			v.add(fmt.Sprintf("'[%d tags]'", len(tags)), member, "Member must have length less than or equal to 200")
		}
		v.tags(member, tags)
	}
}

func (v *validator) tagKeys(member string, keys []string) {
	if v.required(member, keys != nil) {
		if len(keys) < 1 || len(keys) > 50 {
			v.add(fmt.Sprintf("'[%d keys]'", len(keys)), member, "Member must have length between 1 and 50")
		}
		for i := range keys {
			v.str(fmt.Sprintf("%s.%d.member", member, i+1), &keys[i], 1, tagKeyMaxLen, nil)
		}
	}
}

func (s *Server) addTagsToStream(ctx context.Context, in *wire.AddTagsToStreamInput) (*wire.Empty, error) {
	var v validator
	v.streamRef(in.StreamName, in.StreamARN)
	v.tagMap("tags", in.Tags, in.Tags != nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	if len(in.Tags) > 10 {
		return nil, ErrInvalidArgument.With("Failed to add tags to stream %s under account %s because more than 10 tags were given in one request.", deref(in.StreamName), s.cfg.AccountID)
	}
	st, err := s.lookupRef(ctx, in.StreamRef)
	if err != nil {
		return nil, err
	}
	if err := s.addTags(taggable{st: st}, in.Tags); err != nil {
		return nil, err
	}
	return &wire.Empty{}, nil
}

func (s *Server) removeTagsFromStream(ctx context.Context, in *wire.RemoveTagsFromStreamInput) (*wire.Empty, error) {
	st, err := s.validStream(ctx, in.StreamRef, func() (v validator) {
		v.tagKeys("tagKeys", in.TagKeys)
		return v
	})
	if err != nil {
		return nil, err
	}
	if err := s.removeTags(taggable{st: st}, in.TagKeys); err != nil {
		return nil, err
	}
	return &wire.Empty{}, nil
}

func sortedTags(m map[string]string) []wire.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]wire.Tag, 0, len(keys))
	for _, k := range keys {
		val := m[k]
		tags = append(tags, wire.Tag{Key: k, Value: &val})
	}
	return tags
}

func (s *Server) listTagsForStream(ctx context.Context, in *wire.ListTagsForStreamInput) (*wire.ListTagsForStreamOutput, error) {
	st, err := s.validStream(ctx, in.StreamRef, func() (v validator) {
		v.str("exclusiveStartTagKey", in.ExclusiveStartTagKey, 1, tagKeyMaxLen, nil)
		v.intRange("limit", in.Limit, 1, 50)
		return v
	})
	if err != nil {
		return nil, err
	}
	limit := 50
	if in.Limit != nil {
		limit = int(*in.Limit)
	}
	st.mu.RLock()
	all := sortedTags(st.tags)
	st.mu.RUnlock()
	out := &wire.ListTagsForStreamOutput{Tags: []wire.Tag{}}
	for _, t := range all {
		if in.ExclusiveStartTagKey != nil && t.Key <= *in.ExclusiveStartTagKey {
			continue
		}
		if len(out.Tags) == limit {
			out.HasMoreTags = true
			break
		}
		out.Tags = append(out.Tags, t)
	}
	return out, nil
}

// resourceOf resolves a ResourceARN: a stream ARN, or a consumer ARN
// (stream/<name>/consumer/<name>:<seconds>).
func (s *Server) resourceOf(ctx context.Context, arn *string) (taggable, error) {
	var v validator
	v.reqStr("resourceARN", arn, 1, maxStreamARNLen, resourceARNRE)
	if err := v.err(); err != nil {
		return taggable{}, err
	}
	if strings.Contains(*arn, "/consumer/") {
		st, c, err := s.resolveConsumer(ctx, &wire.ConsumerRef{ConsumerARN: arn})
		if err != nil {
			return taggable{}, err
		}
		return taggable{st: st, c: c}, nil
	}
	if !strings.Contains(*arn, ":stream/") {
		return taggable{}, ErrInvalidArgument.With("Resource ARN %s is not a stream or consumer ARN.", *arn)
	}
	st, err := s.lookup(ctx, nil, arn)
	if err != nil {
		return taggable{}, err
	}
	return taggable{st: st}, nil
}

func (s *Server) tagResource(ctx context.Context, in *wire.TagResourceInput) (*wire.Empty, error) {
	var v validator
	v.tagMap("tags", in.Tags, in.Tags != nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	r, err := s.resourceOf(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	if err := s.addTags(r, in.Tags); err != nil {
		return nil, err
	}
	return &wire.Empty{}, nil
}

func (s *Server) untagResource(ctx context.Context, in *wire.UntagResourceInput) (*wire.Empty, error) {
	var v validator
	v.tagKeys("tagKeys", in.TagKeys)
	if err := v.err(); err != nil {
		return nil, err
	}
	r, err := s.resourceOf(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	if err := s.removeTags(r, in.TagKeys); err != nil {
		return nil, err
	}
	return &wire.Empty{}, nil
}

func (s *Server) listTagsForResource(ctx context.Context, in *wire.ListTagsForResourceInput) (*wire.ListTagsForResourceOutput, error) {
	r, err := s.resourceOf(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	r.st.mu.RLock()
	defer r.st.mu.RUnlock()
	tags := r.st.tags
	if r.c != nil {
		tags = r.c.tags
	}
	return &wire.ListTagsForResourceOutput{Tags: sortedTags(tags)}, nil
}

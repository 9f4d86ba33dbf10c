package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxTopicLen is Kafka's limit on a topic name.
const maxTopicLen = 249

// checkTopicName applies Kafka's topic naming rules: 1–249 characters of
// [a-zA-Z0-9._-], and not "." or "..". The error does not repeat the name.
func checkTopicName(t string) error {
	switch {
	case t == "":
		return errors.New("the name is empty")
	case len(t) > maxTopicLen:
		return fmt.Errorf("the name is %d bytes long, more than Kafka's %d", len(t), maxTopicLen)
	case t == "." || t == "..":
		return fmt.Errorf("%q is not a legal name", t)
	}
	for i := 0; i < len(t); i++ {
		switch ch := t[i]; {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '.', ch == '_', ch == '-':
		default:
			return fmt.Errorf("character %q at byte %d is not allowed (only [a-zA-Z0-9._-])", ch, i)
		}
	}
	return nil
}

// topicState is what the sink knows of a topic it produced to.
type topicState struct {
	// fail, when set, is why records to the topic are dead-lettered
	// without a produce, until expires.
	fail    *RecordError
	expires time.Time
}

// maxTopicStates bounds the topic cache: past it the cache is emptied
// (every topic is checked again), so a flood of made-up topic names costs
// metadata requests, not memory.
const maxTopicStates = 1 << 16

// topicCache remembers the topics the cluster has and, for
// Config.TopicErrorTTL, those it has not or that the client may not write:
// the negative cache that spares a repeated unknown topic the wait and the
// retries. Safe for concurrent use.
type topicCache struct {
	mu  sync.RWMutex
	m   map[string]topicState
	ttl time.Duration
}

func newTopicCache(ttl time.Duration) *topicCache {
	return &topicCache{m: make(map[string]topicState), ttl: ttl}
}

// verdict is what Write does with the records of one topic.
type verdict uint8

const (
	produceIt verdict = iota // known, or nothing to go by: produce
	checkIt                  // never seen: ask the brokers first
	failIt                   // dead-letter with the returned error
)

// lookup returns the verdict on topic at now. An expired negative entry
// reads as never seen.
func (c *topicCache) lookup(topic string, now time.Time) (verdict, *RecordError) {
	c.mu.RLock()
	st, ok := c.m[topic]
	c.mu.RUnlock()
	switch {
	case !ok:
		return checkIt, nil
	case st.fail == nil:
		return produceIt, nil
	case now.Before(st.expires):
		return failIt, st.fail
	default:
		return checkIt, nil
	}
}

// known records that topic exists.
func (c *topicCache) known(topic string) { c.set(topic, topicState{}) }

// failed records that records to topic fail with err (Cached is set on a
// copy) for the cache's TTL. A TTL ≤ 0 caches nothing.
func (c *topicCache) failed(err *RecordError, now time.Time) {
	if c.ttl <= 0 {
		c.forget(err.Topic)
		return
	}
	cached := *err
	cached.Cached = true
	c.set(err.Topic, topicState{fail: &cached, expires: now.Add(c.ttl)})
}

func (c *topicCache) set(topic string, st topicState) {
	c.mu.Lock()
	if _, ok := c.m[topic]; !ok && len(c.m) >= maxTopicStates {
		clear(c.m)
	}
	c.m[topic] = st
	c.mu.Unlock()
}

func (c *topicCache) forget(topic string) {
	c.mu.Lock()
	delete(c.m, topic)
	c.mu.Unlock()
}

// checkTopics asks a broker for topics (one metadata request, bounded by
// timeout, never creating a topic) and caches the answers: a topic that
// exists is known; one the cluster does not have, that the client may not
// describe, or that the broker calls invalid is cached as failed, and
// returned with its (uncached) error. A request that fails caches nothing:
// the records are produced and their results decide.
func (c *topicCache) checkTopics(ctx context.Context, cl *kgo.Client, topics []string, timeout time.Duration) (map[string]*RecordError, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	var failed map[string]*RecordError
	now := time.Now()
	for _, rt := range resp.Topics {
		if rt.Topic == nil {
			continue
		}
		t := *rt.Topic
		err := kerr.ErrorForCode(rt.ErrorCode)
		switch reason := topicReason(err); {
		case err == nil:
			c.known(t)
		case reason != "":
			re := &RecordError{Reason: reason, Topic: t, Err: err}
			c.failed(re, now)
			if failed == nil {
				failed = make(map[string]*RecordError)
			}
			failed[t] = re
		}
	}
	return failed, nil
}

// topicReason returns the Reason of an error that belongs to a topic as a
// whole, or "".
func topicReason(err error) string {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return ReasonUnknownTopic
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		return ReasonTopicNotAuthorized
	case errors.Is(err, kerr.InvalidTopicException):
		return ReasonInvalidTopic
	}
	return ""
}

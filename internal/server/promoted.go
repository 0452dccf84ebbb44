package server

import (
	"context"
	"sync"
	"time"

	"github.com/drydock-project/drydock/internal/events"
)

// promotionListeners are in-process listeners to the gate's promotions
// (the Kubernetes auto-rollout of workflows' patch tags).
type promotionListeners struct {
	mu  sync.RWMutex
	fns []func(target, digest string)
}

func (l *promotionListeners) add(fn func(target, digest string)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fns = append(l.fns, fn)
}

// gateEvents is the gate's event publisher: it tells the promotion
// listeners, then passes every event on to the dispatcher.
type gateEvents struct {
	next     *events.Dispatcher
	promoted *promotionListeners
}

func (g *gateEvents) Publish(e events.Event) error {
	if e.Type == events.TypePromotion {
		data, _ := e.Data.(map[string]any)
		target, _ := data["target"].(string)
		digest, _ := data["digest"].(string)
		g.promoted.mu.RLock()
		fns := g.promoted.fns
		g.promoted.mu.RUnlock()
		for _, fn := range fns {
			fn(target, digest)
		}
	}
	if g.next == nil {
		return nil
	}
	return g.next.Publish(e)
}

// listenerTimeout bounds what one promotion listener may take (it runs in
// the promotion's path).
const listenerTimeout = 30 * time.Second

func listenerContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), listenerTimeout)
}

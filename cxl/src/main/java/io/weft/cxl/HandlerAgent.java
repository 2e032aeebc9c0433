package io.weft.cxl;

import org.agrona.concurrent.Agent;

/** Storage-side duty cycle: serves a fixed set of channels; a fenced channel is skipped, the others keep going. */
final class HandlerAgent implements Agent {
    private final String name;
    private final ChannelHandler[] handlers;

    HandlerAgent(String name, ChannelHandler[] handlers) {
        this.name = name;
        this.handlers = handlers;
    }

    @Override
    public int doWork() {
        long now = System.nanoTime();
        int work = 0;
        for (ChannelHandler handler : handlers) {
            work += handler.doWork(now);
        }
        return work;
    }

    @Override
    public void onClose() {
        for (ChannelHandler handler : handlers) {
            handler.stop();
        }
    }

    @Override
    public String roleName() {
        return name;
    }
}

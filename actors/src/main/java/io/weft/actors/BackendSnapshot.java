package io.weft.actors;

import java.util.List;

/**
 * What a backend's actor ({@code storage.BackendActor}) last published about its store, as one immutable value in
 * its {@link NodeState.BackendEntry}: only that actor replaces it; readers take one and read it whole.
 *
 * @param size     the store's size in bytes
 * @param mappings the clients' current mappings of it
 */
public record BackendSnapshot(long size, List<NodeState.MappingStatus> mappings) {

    public BackendSnapshot {
        mappings = List.copyOf(mappings);
    }

    public BackendSnapshot withSize(long next) {
        return new BackendSnapshot(next, mappings);
    }

    public BackendSnapshot withMappings(List<NodeState.MappingStatus> next) {
        return new BackendSnapshot(size, next);
    }
}

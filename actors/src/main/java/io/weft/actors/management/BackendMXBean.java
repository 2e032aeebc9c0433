package io.weft.actors.management;

/** JMX view of one backing store on a storage node: {@code io.weft:type=Backend,node=<node>,path=<path>}. */
public interface BackendMXBean {
    String getPath();
    long getSize();
    int getMappingCount();
    /** One line per mapping: client node / device (mode, transport). */
    String[] getMappings();
    long getReads();
    long getWrites();
    long getBytesRead();
    long getBytesWritten();
    long getErrors();

    /** Grows the store (shrinks it only while nothing is mapped); mapped clients learn the new size. */
    String resize(long newSizeBytes);
}

/** Weft's Java-level benchmarks: JMH micro-benchmarks and a BlockDevice load generator. */
package io.weft.bench;

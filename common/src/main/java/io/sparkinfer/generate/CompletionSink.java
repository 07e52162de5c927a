package io.sparkinfer.generate;

import java.util.function.Supplier;

/**
 * Where a generator running a {@link RequestStream} puts each request's completion as soon as the request is done.
 * Called on the generator's thread; the completion is a supplier, so the caller detokenizes it on a thread of its
 * own, off the decode loop (a finished sequence no longer changes, so any thread may build its completion).
 *
 * @param <T> the stream's tags
 */
@FunctionalInterface
public interface CompletionSink<T> {

  void accept(T tag, Supplier<Completion> completion);
}

package io.sparkinfer.engine;

import ai.djl.ndarray.NDList;
import ai.djl.translate.NoBatchifyTranslator;
import ai.djl.translate.TranslatorContext;
import io.sparkinfer.generate.Completion;
import io.sparkinfer.generate.GenerationRequest;
import io.sparkinfer.generate.Generator;
import java.util.List;

/**
 * Adapts the generation loop to DJL's {@code Translator}: a whole list of requests is one input, and its
 * completions are one output. Generation is a loop of model steps over a KV cache rather than one forward
 * pass, so the loop runs here and the model's block passes the (empty) tensor list through.
 */
final class GenerationTranslator implements NoBatchifyTranslator<List<GenerationRequest>, List<Completion>> {

  private static final String COMPLETIONS = "completions";

  private final Generator generator;
  private final int batchSize;

  GenerationTranslator(Generator generator, int batchSize) {
    if (batchSize < 0) {
      throw new IllegalArgumentException("batch size must be > 0 (or 0 for auto), got " + batchSize);
    }
    this.generator = generator;
    this.batchSize = batchSize;
  }

  @Override
  public NDList processInput(TranslatorContext ctx, List<GenerationRequest> requests) {
    ctx.setAttachment(COMPLETIONS, generator.generate(requests, batchSize));
    return new NDList();
  }

  @Override
  @SuppressWarnings("unchecked")
  public List<Completion> processOutput(TranslatorContext ctx, NDList list) {
    return (List<Completion>) ctx.getAttachment(COMPLETIONS);
  }
}

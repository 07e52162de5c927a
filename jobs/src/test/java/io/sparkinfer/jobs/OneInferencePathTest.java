package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.domain.JavaConstructorCall;
import com.tngtech.archunit.core.domain.JavaMethodCall;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * The batch job and the Spark ML stage run one inference path: only {@link Completions} makes the executors'
 * planning and inference functions, and both the job and {@link TextGenerator} go through it.
 */
class OneInferencePathTest {

  static final JavaClasses CLASSES = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
      .importPackages("io.sparkinfer.jobs");

  @Test
  void onlyCompletionsMakesThePlanningAndInferenceFunctions() {
    for (Class<?> made : new Class<?>[] {PartitionInference.class, PromptPlanner.class}) {
      Set<String> callers = new TreeSet<>();
      for (JavaConstructorCall call : CLASSES.get(made).getConstructorCallsToSelf()) {
        callers.add(call.getOriginOwner().getSimpleName());
      }
      assertThat(callers).as("who constructs %s", made.getSimpleName()).containsExactly("Completions");
    }
  }

  @Test
  void theJobAndTheTransformerBothCallIt() {
    JavaClass completions = CLASSES.get(Completions.class);
    Set<String> callers = new TreeSet<>();
    for (JavaMethodCall call : completions.getMethodCallsToSelf()) {
      callers.add(call.getOriginOwner().getSimpleName());
    }
    assertThat(callers).contains("RunPlan", "BatchInference", "TextGenerator");
  }
}

package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;

import com.tngtech.archunit.core.domain.Dependency;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Dependencies point one way: a package uses only packages in layers below its own (or classes of its own
 * package). The layers are README's table of packages (section "Layout"), read from README itself, so the
 * documented order and the code cannot drift apart; every package of the project must be in it.
 */
class LayeringTest {

  private static final Pattern ROW = Pattern.compile("^\\| (\\d+) \\| ([^|]+) \\|", Pattern.MULTILINE);
  private static List<List<String>> layers;
  private static JavaClasses classes;

  @BeforeAll
  static void read() throws IOException {
    String readme = Files.readString(Path.of("..", "README.md"), StandardCharsets.UTF_8);
    int start = readme.indexOf("<!-- layers -->");
    int end = readme.indexOf("<!-- /layers -->");
    assertThat(start).as("README marks its table of layers with <!-- layers -->").isNotNegative();
    layers = new ArrayList<>();
    Matcher m = ROW.matcher(readme.substring(start, end));
    while (m.find()) {
      assertThat(Integer.parseInt(m.group(1))).as("layers numbered in order").isEqualTo(layers.size() + 1);
      List<String> packages = new ArrayList<>();
      for (String p : m.group(2).split(",")) {
        packages.add("io.sparkinfer." + p.replace("`", "").trim());
      }
      layers.add(packages);
    }
    classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
        .importPackages("io.sparkinfer");
  }

  @Test
  void readmeListsTheLayersTopToBottom() {
    assertThat(layers).as("README's table of layers").hasSizeGreaterThan(8);
    assertThat(layers.get(0)).containsExactly("io.sparkinfer.jobs.sweep");
    assertThat(layers.get(1)).containsExactly("io.sparkinfer.jobs");
    assertThat(layers.get(layers.size() - 1)).contains("io.sparkinfer.base", "io.sparkinfer.options");
  }

  @Test
  void everyPackageIsInALayer() {
    TreeSet<String> missing = new TreeSet<>();
    for (JavaClass c : classes) {
      if (layerOf(c.getPackageName()) < 0) {
        missing.add(c.getPackageName());
      }
    }
    assertThat(missing).as("packages missing from README's table of layers").isEmpty();
    assertThat(classes.contain("io.sparkinfer.engine.LlmEngine")).as("the engine's classes were imported").isTrue();
    assertThat(classes.contain("io.sparkinfer.jobs.BatchInferenceJob")).isTrue();
  }

  @Test
  void noPackageUsesAPackageAboveItOrBesideIt() {
    Map<String, TreeSet<String>> violations = new TreeMap<>();
    for (JavaClass c : classes) {
      int from = layerOf(c.getPackageName());
      for (Dependency d : c.getDirectDependenciesFromSelf()) {
        String target = d.getTargetClass().getPackageName();
        if (!target.startsWith("io.sparkinfer.") || target.equals(c.getPackageName())) {
          continue;
        }
        int to = layerOf(target);
        if (to <= from) {
          violations.computeIfAbsent(c.getPackageName() + " -> " + target, k -> new TreeSet<>())
              .add(c.getSimpleName() + " uses " + d.getTargetClass().getSimpleName());
        }
      }
    }
    assertThat(violations).as("dependencies on a package in the same or a higher layer of README's table").isEmpty();
  }

  private static int layerOf(String pkg) {
    for (int i = 0; i < layers.size(); i++) {
      if (layers.get(i).contains(pkg)) {
        return i;
      }
    }
    return -1;
  }
}

package io.sparkinfer.options;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Options declared once: parsing, checks, formatting, the precedence chain, usage text and README tables. */
class OptionTableTest {

  enum Color { RED, GREEN }

  static final Option<Integer> SIZE = Option.integerOrAuto("size", "N|auto", 1, "how many; auto: as many as fit");
  static final Option<Integer> STEPS = Option.integer("steps", "N", 16, "steps per call")
      .validate(n -> n >= 1 && n <= 16, "in [1, 16]");
  static final Option<Double> RATE = Option.number("rate", "R", 1.0, "a rate").between(0, 1);
  static final Option<Boolean> FAST = Option.flag("fast", true, "go fast");
  static final Option<List<String>> STOP = Option.repeated("stop", "TEXT", "stop text");
  static final Option<Color> COLOR = Option.choice("color", null, true, c -> c.name().toLowerCase(), "a color",
      Color.values());
  static final Option<String> PATH = Option.text("path", "DIR", null, "a path").describedDefault("the current dir");
  static final Option<Boolean> TRACE = Option.flag("trace", false, "log every step").diagnostic();

  static final OptionTable TABLE = new OptionTable(
      new OptionTable.Group("tool options", List.of(PATH, SIZE, STEPS, RATE)),
      new OptionTable.Group("engine options", List.of(FAST, STOP, COLOR, TRACE)));

  static OptionValues resolve(Map<String, String> conf, Map<String, String> env, String... args) {
    return TABLE.resolve(TABLE.parse(args), conf::get, env::get);
  }

  @Test
  void defaultsAreTypedAndFormattedOnce() {
    OptionValues v = resolve(Map.of(), Map.of());
    assertThat(v.get(SIZE)).as("auto is held as 0").isZero();
    assertThat(v.text(SIZE)).isEqualTo("auto");
    assertThat(v.get(STEPS)).isEqualTo(16);
    assertThat(v.get(RATE)).isEqualTo(1.0);
    assertThat(v.get(FAST)).isTrue();
    assertThat(v.get(STOP)).isEmpty();
    assertThat(v.get(COLOR)).as("auto is held as null").isNull();
    assertThat(v.text(COLOR)).isEqualTo("auto");
    assertThat(v.get(PATH)).isNull();
    assertThat(v.text(PATH)).isNull();
    assertThat(v.texts(List.of(SIZE, FAST, RATE))).containsExactly(Map.entry("size", "auto"), Map.entry("fast", "true"),
        Map.entry("rate", "1.0"));
  }

  @Test
  void theCommandLineBeatsTheConfWhichBeatsTheEnvironmentWhichBeatsTheDefault() {
    Map<String, String> conf = Map.of("spark.sparkinfer.size", "8", "spark.sparkinfer.steps", "4");
    Map<String, String> env = Map.of("SPARKINFER_SIZE", "2", "SPARKINFER_STEPS", "3", "SPARKINFER_RATE", "0.5");
    OptionValues v = resolve(conf, env, "--size", "32");
    assertThat(v.get(SIZE)).as("command line").isEqualTo(32);
    assertThat(v.get(STEPS)).as("Spark conf").isEqualTo(4);
    assertThat(v.get(RATE)).as("environment").isEqualTo(0.5);
    assertThat(v.get(FAST)).as("default").isTrue();
    assertThat(SIZE.confKey()).isEqualTo("spark.sparkinfer.size");
    assertThat(Option.flag("max-new-tokens", false, "x").environmentVariable()).isEqualTo("SPARKINFER_MAX_NEW_TOKENS");
  }

  @Test
  void valuesRememberWhichOptionsWereGivenWithoutItChangingEquality() {
    OptionValues v = resolve(Map.of("spark.sparkinfer.steps", "16"), Map.of("SPARKINFER_RATE", "0.5"), "--size", "1");
    assertThat(v.isGiven(SIZE)).as("command line").isTrue();
    assertThat(v.isGiven(STEPS)).as("Spark conf, even equal to the default").isTrue();
    assertThat(v.isGiven(RATE)).as("environment").isTrue();
    assertThat(v.isGiven(FAST)).as("left at its default").isFalse();
    assertThat(v.with(FAST, true).isGiven(FAST)).as("set with with()").isTrue();
    assertThat(v.withText(STOP, "x").isGiven(STOP)).isTrue();
    assertThat(v.only(List.of(SIZE, FAST)).isGiven(SIZE)).as("only() keeps the record").isTrue();
    assertThat(OptionValues.defaults(List.of(SIZE)).isGiven(SIZE)).isFalse();
    assertThat(resolve(Map.of(), Map.of(), "--steps", "16")).as("equal values are equal however they were given")
        .isEqualTo(resolve(Map.of(), Map.of())).hasSameHashCodeAs(resolve(Map.of(), Map.of()));
    assertThatThrownBy(() -> v.isGiven(Option.flag("other", false, "x"))).hasMessageContaining("not an option");
  }

  @Test
  void flagsRepeatedOptionsAndChoices() {
    OptionValues v = resolve(Map.of(), Map.of(), "--fast=false", "--stop", "a", "--stop", "b", "--color", "GREEN");
    assertThat(v.get(FAST)).isFalse();
    assertThat(v.get(STOP)).containsExactly("a", "b");
    assertThat(v.get(COLOR)).isEqualTo(Color.GREEN);
    assertThat(resolve(Map.of(), Map.of(), "--fast").get(FAST)).isTrue();
    assertThat(resolve(Map.of("spark.sparkinfer.fast", "no"), Map.of()).get(FAST)).as("conf takes yes/no").isFalse();
    assertThat(resolve(Map.of(), Map.of(), "--color", "auto").get(COLOR)).isNull();
    assertThat(resolve(Map.of(), Map.of(), "--size", "0").get(SIZE)).as("0 reads as auto").isZero();
  }

  @Test
  void badValuesNameTheOptionWhereTheValueCameFromAndWhy() {
    assertThatThrownBy(() -> resolve(Map.of(), Map.of(), "--steps", "17"))
        .hasMessage("--steps must be in [1, 16], got '17'");
    assertThatThrownBy(() -> resolve(Map.of(), Map.of(), "--steps", "x")).hasMessage("--steps must be an integer, got 'x'");
    assertThatThrownBy(() -> resolve(Map.of(), Map.of(), "--size", "-2")).hasMessage("--size must be >= 1 or auto, got '-2'");
    assertThatThrownBy(() -> resolve(Map.of(), Map.of(), "--rate", "NaN")).hasMessageContaining("--rate must be a finite number");
    assertThatThrownBy(() -> resolve(Map.of(), Map.of(), "--color", "blue"))
        .hasMessage("--color must be one of auto, red, green, got 'blue'");
    assertThatThrownBy(() -> resolve(Map.of("spark.sparkinfer.steps", "0"), Map.of()))
        .hasMessage("--steps (from spark.sparkinfer.steps) must be in [1, 16], got '0'");
    assertThatThrownBy(() -> resolve(Map.of(), Map.of("SPARKINFER_RATE", "2")))
        .hasMessage("--rate (from $SPARKINFER_RATE) must be in [0.0, 1.0], got '2'");
    assertThatThrownBy(() -> TABLE.parse("--fast=maybe")).hasMessageContaining("--fast is a flag");
    assertThatThrownBy(() -> TABLE.parse("--size", "1", "--size", "2")).hasMessage("--size given more than once");
    assertThatThrownBy(() -> TABLE.parse("--nope")).hasMessageContaining("unknown option --nope");
    assertThatThrownBy(() -> TABLE.parse("--size")).hasMessageContaining("--size needs a value (N|auto)");
    assertThatThrownBy(() -> TABLE.parse("stray")).hasMessageContaining("unexpected argument 'stray'");
    assertThatThrownBy(() -> new OptionTable(new OptionTable.Group("a", List.of(SIZE)),
        new OptionTable.Group("b", List.of(SIZE)))).hasMessageContaining("--size is declared twice");
  }

  @Test
  void valuesAreImmutableCheckedAndEqualByContent() {
    OptionValues v = resolve(Map.of(), Map.of());
    OptionValues four = v.with(STEPS, 4);
    assertThat(v.get(STEPS)).as("unchanged").isEqualTo(16);
    assertThat(four.get(STEPS)).isEqualTo(4);
    assertThat(four).isEqualTo(v.with(STEPS, 4)).hasSameHashCodeAs(v.with(STEPS, 4)).isNotEqualTo(v);
    assertThatThrownBy(() -> v.with(STEPS, 99)).hasMessageContaining("--steps must be in [1, 16]");
    assertThatThrownBy(() -> v.get(Option.flag("other", false, "not in the table")))
        .isInstanceOf(IllegalStateException.class).hasMessageContaining("--other is not an option of this table");
  }

  @Test
  void usageListsEachGroupWithDefaultsAndDiagnosticsApart() {
    String usage = TABLE.usage("tool [options]", "Does things.");
    assertThat(usage).startsWith("usage: tool [options]\n\nDoes things.");
    assertThat(usage).contains("tool options:\n").contains("engine options:\n")
        .contains("engine options, developers' diagnostics:\n  --trace");
    assertThat(usage).contains("--size N|auto").contains("how many; auto: as many as fit (default: auto)")
        .contains("--path DIR").contains("(default: the current dir)").contains("--fast ").contains("(repeatable)");
    assertThat(usage.indexOf("--trace")).as("diagnostics after the group's other options")
        .isGreaterThan(usage.indexOf("--color"));
  }

  @Test
  void markdownTablesEscapePipesAndMarkDiagnostics() {
    String md = TABLE.markdown();
    assertThat(md).startsWith("**tool options**\n\n| option | default | meaning |\n| --- | --- | --- |\n");
    assertThat(md).contains("| `--size N\\|auto` | auto | how many; auto: as many as fit |");
    assertThat(md).contains("| `--color auto\\|red\\|green` | auto | a color |");
    assertThat(md).contains("| `--trace` | false | diagnostic: log every step |");
    assertThat(md).contains("| `--stop TEXT` |  | stop text (repeatable) |");
  }
}

package io.sparkinfer.jobs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The result cache's key ({@link CacheKey}): every component of it changes it, what cannot change a token does not,
 * and the model is known by its files' content ({@link ModelFingerprint}), not its path.
 */
class CacheKeyTest {

  static final String FINGERPRINT = "f".repeat(64);
  static final String PROMPT = "def add(a, b):";

  @TempDir
  Path tmp;

  /** The key of {@link #PROMPT} under id {@code p0}, run on a CPU with these options. */
  static String key(String... args) {
    return keyOf(CacheKey.of(options(args), FINGERPRINT, false, "1.0"), PROMPT, "p0");
  }

  static String keyOf(CacheKey k, String prompt, String id) {
    return k.key(prompt, id);
  }

  static JobOptions options(String... args) {
    List<String> all = new ArrayList<>(List.of("--model", "m", "--input", "in", "--output", "out"));
    all.addAll(List.of(args));
    return TestSupport.options(all.toArray(String[]::new));
  }

  @Test
  void everyComponentChangesTheKey() {
    String base = key();
    Map<String, String> changed = new java.util.LinkedHashMap<>();
    changed.put("precision", key("--precision", "fp16"));
    changed.put("backend", key("--backend", "scripted"));
    changed.put("layout", key("--layout", "tp=2"));
    changed.put("engine option", key("--rope-in-checkpoint-dtype"));
    changed.put("another engine option", key("--decode-chunk", "4"));
    changed.put("another cuBLAS", key("--cublas", "/opt/cuda-12.6/lib64"));
    changed.put("max-new-tokens", key("--max-new-tokens", "4"));
    changed.put("stop", key("--stop", "\n"));
    changed.put("ignore-eos", key("--ignore-eos"));
    changed.put("sampling", key("--temperature", "0.9", "--seed", "0"));
    changed.put("model weights", keyOf(CacheKey.of(options(), "e".repeat(64), false, "1.0"), PROMPT, "p0"));
    changed.put("device kind", keyOf(CacheKey.of(options("--precision", "fp32", "--backend", "eager"), FINGERPRINT,
        true, "1.0"), PROMPT, "p0"));
    changed.put("project version", keyOf(CacheKey.of(options(), FINGERPRINT, false, "1.1"), PROMPT, "p0"));
    changed.put("prompt", keyOf(CacheKey.of(options(), FINGERPRINT, false, "1.0"), PROMPT + " ", "p0"));
    for (Map.Entry<String, String> e : changed.entrySet()) {
      assertThat(e.getValue()).as("a changed %s", e.getKey()).hasSize(64).isNotEqualTo(base);
    }
    assertThat(new java.util.HashSet<>(changed.values())).as("each change gives a key of its own")
        .hasSize(changed.size());
  }

  @Test
  void sampledKeysHoldEachRowsDerivedSeedAndTheSamplingSettings() {
    CacheKey seven = CacheKey.of(options("--temperature", "0.9", "--top-k", "20", "--seed", "7"), FINGERPRINT, false,
        "1.0");
    String p0 = seven.key(PROMPT, "p0");
    assertThat(seven.key(PROMPT, "p1")).as("another id samples with another seed").isNotEqualTo(p0);
    assertThat(seven.seed("p0")).isEqualTo(io.sparkinfer.generate.SamplingParams.requestSeed(7, "p0"));
    assertThat(seven.text(PROMPT, "p0")).contains("sampling temperature=0.9 top-k=20 top-p=1.0 seed=" + seven.seed("p0"));
    for (String[] other : new String[][] {{"--temperature", "0.9", "--top-k", "20", "--seed", "8"},
        {"--temperature", "0.9", "--top-k", "10", "--seed", "7"}, {"--temperature", "0.8", "--top-k", "20", "--seed", "7"},
        {"--temperature", "0.9", "--top-k", "20", "--top-p", "0.9", "--seed", "7"}}) {
      assertThat(CacheKey.of(options(other), FINGERPRINT, false, "1.0").key(PROMPT, "p0")).as("%s", List.of(other))
          .isNotEqualTo(p0);
    }
  }

  @Test
  void whatCannotChangeATokenLeavesTheKeyAlone() {
    String base = key();
    assertThat(key("--batch-size", "7", "--max-prompt-tokens", "64", "--oom-retry=false", "--partitions", "3",
        "--commit-every", "10", "--dedup=false")).as("batching, limits that only make errors, the job's layout")
        .isEqualTo(base);
    assertThat(key("--kernel-cache", "none")).as("where compiled kernels are kept").isEqualTo(base);
    assertThat(CacheKey.of(options("--cublas", "bundled"), FINGERPRINT, false, "1.0").text(PROMPT, "p0"))
        .as("the bundled cuBLAS is not named: keys from before --cublas still hit").doesNotContain("cublas");
    assertThat(key("--precision", "fp32", "--backend", "eager", "--device", "cpu"))
        .as("what auto resolves to on a CPU, given explicitly").isEqualTo(base);
    assertThat(key("--temperature", "0", "--top-p", "0.5", "--seed", "9")).as("greedy is greedy").isEqualTo(base);
    assertThat(key("--top-k", "1", "--temperature", "0.7")).as("top-k 1 is greedy too").isEqualTo(base);
    CacheKey greedy = CacheKey.of(options(), FINGERPRINT, false, "1.0");
    assertThat(greedy.key(PROMPT, "another-id")).as("greedy keys do not hold the id").isEqualTo(base);
    assertThat(greedy.seed("p0")).isNull();
  }

  @Test
  void theKeyResolvesAutoAsTheEngineWillOnTheTasksDevice() {
    CacheKey cpu = CacheKey.of(options(), FINGERPRINT, false, "1.0");
    CacheKey gpu = CacheKey.of(options(), FINGERPRINT, true, "1.0");
    assertThat(List.of(cpu.precision(), cpu.deviceKind(), cpu.backend())).containsExactly("fp32", "cpu", "eager");
    assertThat(List.of(gpu.precision(), gpu.deviceKind(), gpu.backend())).containsExactly("fp16", "gpu", "scripted");
    assertThat(CacheKey.of(options("--precision", "bf16"), FINGERPRINT, false, "1.0").backend())
        .as("bf16 runs on the scripted backend").isEqualTo("scripted");
  }

  @Test
  void sampledRequestsWithoutAGivenSeedHaveNoKey() {
    JobOptions unseeded = options("--temperature", "0.9");
    assertThat(unseeded.isCacheable()).isFalse();
    assertThat(options("--temperature", "0.9", "--seed", "0").isCacheable()).as("a seed given, even the default one")
        .isTrue();
    assertThat(JobOptions.parse(new String[] {"--model", "m", "--input", "i", "--output", "o", "--temperature", "0.9"},
        k -> k.equals("spark.sparkinfer.seed") ? "3" : null, k -> null).isCacheable()).as("a seed from the conf")
        .isTrue();
    assertThat(options().isCacheable()).as("greedy").isTrue();
    assertThatThrownBy(() -> CacheKey.of(unseeded, FINGERPRINT, false, "1.0"))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("--seed");
  }

  @Test
  void theFingerprintIsTheFilesContentWhateverThePath() throws IOException {
    Path a = copyModel("a");
    Path b = copyModel("b");
    String fp = ModelFingerprint.ofLocal(a);
    assertThat(fp).hasSize(64).isEqualTo(ModelFingerprint.ofLocal(b));
    assertThat(ModelFingerprint.ofHadoop(a.toUri().toString(), new Configuration(false)))
        .as("read through Hadoop's file system").isEqualTo(fp);

    Files.writeString(b.resolve("README.md"), "notes");
    Files.writeString(b.resolve(".cache-marker"), "x");
    assertThat(ModelFingerprint.ofLocal(b)).as("documentation and hidden files are not the model").isEqualTo(fp);

    byte[] weights = Files.readAllBytes(b.resolve("model.safetensors"));
    weights[weights.length - 1] ^= 1; // the lowest bit of the last tensor's last value
    Files.write(b.resolve("model.safetensors"), weights);
    assertThat(ModelFingerprint.ofLocal(b)).as("one bit of the weights").isNotEqualTo(fp);

    Path c = copyModel("c");
    Files.writeString(c.resolve("generation_config.json"), Files.readString(c.resolve("generation_config.json")) + " ");
    assertThat(ModelFingerprint.ofLocal(c)).as("the generation config").isNotEqualTo(fp);
    Path d = copyModel("d");
    Files.writeString(d.resolve("tokenizer.json"), Files.readString(d.resolve("tokenizer.json")) + " ");
    assertThat(ModelFingerprint.ofLocal(d)).as("the tokenizer").isNotEqualTo(fp);

    assertThatThrownBy(() -> ModelFingerprint.ofLocal(Files.createDirectories(tmp.resolve("empty"))))
        .hasMessageContaining("no files to fingerprint");
  }

  private Path copyModel(String name) throws IOException {
    Path dir = Files.createDirectories(tmp.resolve(name));
    try (var files = Files.list(TestSupport.tinyModel())) {
      for (Path f : files.toList()) {
        Files.copy(f, dir.resolve(f.getFileName()));
        dir.resolve(f.getFileName()).toFile().setWritable(true); // the shared fixtures are read-only
      }
    }
    return dir;
  }
}

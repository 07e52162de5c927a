package io.sparkinfer.jobs.sweep;

import io.sparkinfer.jobs.sweep.SweepReport.Trial;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * {@link SweepReport}'s {@value SweepReport#INDEX_HTML}: the title, a summary, both charts and a table of every
 * trial; inline CSS, no external resources. An inline script checks on load that every image decoded, logs
 * {@code console.error("image failed to load: " + src)} for any that did not, and sets
 * {@code data-images-loaded="<loaded>/<total>"} on the body, for a headless browser to read.
 */
final class ReportPage {

  private static final String STYLE = """
      body { font-family: sans-serif; margin: 2em; color: #222; }
      table { border-collapse: collapse; font-size: 0.9em; }
      th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
      td.num { text-align: right; white-space: nowrap; }
      tr.ok td.status { color: #176b2c; }
      tr.failed td.status, tr.oom td.status { color: #a31515; }
      img { display: block; margin: 1em 0; }
      """;

  private static final String IMAGE_CHECK = """
      window.addEventListener("load", function () {
        var images = document.images, loaded = 0;
        for (var i = 0; i < images.length; i++) {
          if (images[i].complete && images[i].naturalWidth > 0) {
            loaded++;
          } else {
            console.error("image failed to load: " + images[i].src);
          }
        }
        document.body.dataset.imagesLoaded = loaded + "/" + images.length;
      });
      """;

  private static final List<String> COLUMNS = List.of("trial", "status", "params", "tokens/s ± CI95",
      "p99 token latency (ms)", "p99 latency (ms)", "peak GPU memory (MB)", "agreement (identical / first token)",
      "Pareto", "constraints", "error");

  private ReportPage() {}

  /** The page for {@code trials} (in the order given). */
  static String html(List<Trial> trials, String title) {
    StringBuilder b = new StringBuilder();
    b.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>").append(escape(title))
        .append("</title>\n<style>\n").append(STYLE).append("</style>\n<script>\n").append(IMAGE_CHECK)
        .append("</script>\n</head>\n<body>\n<h1>").append(escape(title)).append("</h1>\n");
    summary(b, trials);
    image(b, SweepReport.THROUGHPUT_PNG, "Throughput (tokens/s) by batch size, one series per precision");
    image(b, SweepReport.PARETO_PNG, "p99 latency against throughput of the ok trials, with the Pareto front");
    table(b, trials);
    return b.append("</body>\n</html>\n").toString();
  }

  private static void summary(StringBuilder b, List<Trial> trials) {
    b.append("<ul class=\"summary\">\n");
    item(b, "Study", "run " + distinct(trials, Trial::runId) + ", model " + distinct(trials, Trial::model) + ", GPU "
        + distinct(trials, Trial::gpuName) + ", date " + distinct(trials, Trial::date));
    item(b, "Trials", trials.size() + byStatus(trials));
    item(b, "Best ok trial within the constraints", best(trials)
        .map(t -> "trial " + t.trial() + " (" + params(t) + "): " + throughput(t) + " tokens/s")
        .orElse("none"));
    b.append("</ul>\n");
  }

  private static void item(StringBuilder b, String label, String text) {
    b.append("<li><strong>").append(escape(label)).append(":</strong> ").append(escape(text)).append("</li>\n");
  }

  private static String byStatus(List<Trial> trials) {
    Map<String, Long> counts = new LinkedHashMap<>();
    for (String s : List.of(SweepTables.OK, SweepTables.OOM, SweepTables.PRUNED, SweepTables.FAILED)) {
      counts.put(s, 0L);
    }
    trials.forEach(t -> counts.merge(String.valueOf(t.status()), 1L, Long::sum));
    String parts = counts.entrySet().stream().filter(e -> e.getValue() > 0)
        .map(e -> e.getValue() + " " + e.getKey()).collect(Collectors.joining(", "));
    return parts.isEmpty() ? "" : " (" + parts + ")";
  }

  private static Optional<Trial> best(List<Trial> trials) {
    return trials.stream().filter(t -> t.ok() && t.satisfiesConstraints() && t.tokensPerS() != null)
        .max(Comparator.comparingDouble(Trial::tokensPerS));
  }

  private static String distinct(List<Trial> trials, Function<Trial, String> f) {
    String values = trials.stream().map(f).filter(Objects::nonNull).distinct().collect(Collectors.joining(", "));
    return values.isEmpty() ? "-" : values;
  }

  private static void image(StringBuilder b, String file, String alt) {
    b.append("<img src=\"").append(file).append("\" alt=\"").append(escape(alt)).append("\" width=\"")
        .append(SweepReport.CHART_WIDTH).append("\" height=\"").append(SweepReport.CHART_HEIGHT).append("\">\n");
  }

  private static void table(StringBuilder b, List<Trial> trials) {
    b.append("<table class=\"trials\">\n<thead><tr>");
    COLUMNS.forEach(c -> b.append("<th>").append(escape(c)).append("</th>"));
    b.append("</tr></thead>\n<tbody>\n");
    for (Trial t : trials) {
      b.append("<tr class=\"").append(escape(String.valueOf(t.status()))).append("\">");
      cell(b, "num", String.valueOf(t.trial()));
      cell(b, "status", String.valueOf(t.status()));
      cell(b, "", params(t));
      cell(b, "num", throughput(t));
      cell(b, "num", number(t.tokenLatencyP99Ms(), "%.2f"));
      cell(b, "num", number(t.latencyP99Ms(), "%.1f"));
      cell(b, "num", number(t.peakGpuMemMb(), "%.0f"));
      cell(b, "num", agreement(t));
      cell(b, "", t.pareto() ? "yes" : "");
      cell(b, "", t.satisfiesConstraints() ? "within" : "outside");
      cell(b, "", t.error() != null ? t.error() : "");
      b.append("</tr>\n");
    }
    b.append("</tbody>\n</table>\n");
  }

  private static void cell(StringBuilder b, String cssClass, String text) {
    b.append(cssClass.isEmpty() ? "<td>" : "<td class=\"" + cssClass + "\">").append(escape(text)).append("</td>");
  }

  private static String params(Trial t) {
    List<String> pairs = new ArrayList<>();
    t.params().forEach((k, v) -> pairs.add(k + "=" + v));
    return String.join(", ", pairs);
  }

  private static String throughput(Trial t) {
    if (t.tokensPerS() == null) {
      return "-";
    }
    String mean = number(t.tokensPerS(), "%.1f");
    return t.ci95() == null ? mean : mean + " ± " + number(t.ci95(), "%.1f");
  }

  private static String agreement(Trial t) {
    if (t.agreementIdentical() == null && t.agreementFirstToken() == null) {
      return "-";
    }
    return number(t.agreementIdentical(), "%.3f") + " / " + number(t.agreementFirstToken(), "%.3f");
  }

  private static String number(Double v, String format) {
    return v == null ? "-" : String.format(Locale.ROOT, format, v);
  }

  /** {@code s} with HTML's special characters as entities, safe in text and in quoted attributes. */
  static String escape(String s) {
    StringBuilder b = new StringBuilder(s.length());
    for (char c : s.toCharArray()) {
      switch (c) {
        case '&' -> b.append("&amp;");
        case '<' -> b.append("&lt;");
        case '>' -> b.append("&gt;");
        case '"' -> b.append("&quot;");
        case '\'' -> b.append("&#39;");
        default -> b.append(c);
      }
    }
    return b.toString();
  }
}

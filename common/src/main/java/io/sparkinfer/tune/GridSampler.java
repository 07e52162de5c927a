package io.sparkinfer.tune;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every combination of the axes' grid values ({@link Axis#grid()}), the first axis outermost, at most
 * {@code budget} of them.
 */
public final class GridSampler implements Sampler {

  private final Space space;
  private final List<List<String>> values = new ArrayList<>();
  private final int[] odometer;
  private final long budget;
  private long asked;
  private boolean exhausted;

  /** @param budget the most trials to ask for; 0 for the whole grid */
  public GridSampler(Space space, long budget) {
    this.space = space;
    for (Axis a : space.axes()) {
      values.add(a.grid());
    }
    this.odometer = new int[values.size()];
    this.budget = budget > 0 ? budget : Long.MAX_VALUE;
  }

  @Override
  public List<Map<String, String>> ask(int max) {
    List<Map<String, String>> out = new ArrayList<>();
    while (out.size() < max && !exhausted && asked < budget) {
      Map<String, String> trial = new LinkedHashMap<>();
      for (int i = 0; i < odometer.length; i++) {
        trial.put(space.axes().get(i).name(), values.get(i).get(odometer[i]));
      }
      out.add(trial);
      asked++;
      advance();
    }
    return out;
  }

  /** The last axis turns fastest. */
  private void advance() {
    for (int i = odometer.length - 1; i >= 0; i--) {
      if (++odometer[i] < values.get(i).size()) {
        return;
      }
      odometer[i] = 0;
    }
    exhausted = true;
  }

  @Override
  public void tell(Map<String, String> trial, double objective) {}

  @Override
  public String name() {
    return "grid";
  }
}

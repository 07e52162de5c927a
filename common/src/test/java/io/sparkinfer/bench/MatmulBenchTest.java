package io.sparkinfer.bench;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import io.sparkinfer.torchscript.TorchScriptArchive;
import java.util.List;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;

/**
 * MatmulBench's timing uses every product: its sum holds the first element of each product of each round, so none
 * can be skipped or merged (the float8 kinds need a GPU: the bench runs there).
 */
class MatmulBenchTest {

  @Test
  void theSumHoldsTheFirstElementOfEveryProductOfEveryRound() {
    try (PtNDManager m = (PtNDManager) NDManager.newBaseManager(Device.cpu())) {
      PtSymbolBlock bench = TorchScriptArchive.load(m, "MatmulBench", MatmulBench.SOURCE);
      NDArray a = m.randomNormal(new Shape(4, 8)); // (M, K)
      List<NDArray> ws = List.of(m.randomNormal(new Shape(6, 8)), m.randomNormal(new Shape(6, 8))); // (N, K) each
      NDArray unused = m.ones(new Shape(1, 1));
      float firsts = a.get(0).dot(ws.get(0).get(0)).getFloat() + a.get(0).dot(ws.get(1).get(0)).getFloat();
      assertThat(MatmulBench.run(bench, a, ws, unused, List.of(unused, unused), 3, 0)).isCloseTo(3 * firsts,
          Offset.offset(1e-3f));
      assertThat(MatmulBench.run(bench, a, ws, unused, List.of(unused, unused), 1, 0)).isCloseTo(firsts,
          Offset.offset(1e-3f));
    }
  }
}

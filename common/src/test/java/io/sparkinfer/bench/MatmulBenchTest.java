package io.sparkinfer.bench;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import io.sparkinfer.torchscript.TorchScriptArchive;
import org.junit.jupiter.api.Test;

/** MatmulBench's TorchScript loads and its plain path multiplies (the float8 path needs a GPU: the bench runs there). */
class MatmulBenchTest {

  @Test
  void thePlainPathReturnsAnElementOfTheProduct() {
    try (PtNDManager m = (PtNDManager) NDManager.newBaseManager(Device.cpu())) {
      PtSymbolBlock bench = TorchScriptArchive.load(m, "MatmulBench", MatmulBench.SOURCE);
      NDArray a = m.randomNormal(new Shape(4, 8));
      NDArray w = m.randomNormal(new Shape(6, 8));
      NDArray none = m.zeros(new Shape(1));
      try (IValue ia = IValue.from((PtNDArray) a); IValue iw = IValue.from((PtNDArray) w);
          IValue in = IValue.from((PtNDArray) none); IValue reps = IValue.from(3L); IValue fp8 = IValue.from(false);
          IValue fast = IValue.from(false);
          IValue out = bench.forward(new IValue[] {ia, iw, in, in, reps, fp8, fast})) {
        float first = a.get(0).dot(w.get(0)).getFloat();
        assertThat(out.toTensor(m).toFloatArray()).containsExactly(new float[] {first}, org.assertj.core.data.Offset.offset(1e-4f));
      }
    }
  }
}

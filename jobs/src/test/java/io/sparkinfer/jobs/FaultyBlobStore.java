package io.sparkinfer.jobs;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import org.jclouds.blobstore.BlobStore;
import org.jclouds.blobstore.domain.MultipartUpload;
import org.jclouds.http.HttpResponse;
import org.jclouds.http.HttpResponseException;

/**
 * A blob store for S3Proxy that answers some calls with an HTTP error instead of doing them: S3Proxy sends the
 * status to the client as S3 would (503 for throttling, 400 for a request S3 refuses). A fault is armed with a
 * status, which calls it hits (by method, and for multipart parts by the object's key) and how many times.
 */
final class FaultyBlobStore implements InvocationHandler {

  /** The store's calls that are S3 requests (not S3Proxy's own bookkeeping such as getContext). */
  private static final Set<String> NOT_REQUESTS = Set.of("getContext", "toString", "hashCode", "equals");

  private final BlobStore target;
  private volatile int status;
  private volatile Predicate<String> methods = m -> false;
  private volatile Predicate<String> keys = k -> true;
  private final AtomicInteger remaining = new AtomicInteger();
  private final AtomicInteger served = new AtomicInteger();

  private FaultyBlobStore(BlobStore target) {
    this.target = target;
  }

  /** A proxy of {@code target} and the handle that arms its faults. */
  static FaultyBlobStore over(BlobStore target) {
    return new FaultyBlobStore(target);
  }

  BlobStore store() {
    return (BlobStore) Proxy.newProxyInstance(BlobStore.class.getClassLoader(), new Class<?>[] {BlobStore.class}, this);
  }

  /** The next {@code times} requests of any kind get {@code status}. */
  void failNextRequests(int times, int status) {
    arm(status, m -> true, k -> true, times);
  }

  /** The next {@code times} multipart part uploads of objects whose key passes {@code key} get {@code status}. */
  void failPartUploads(int times, int status, Predicate<String> key) {
    arm(status, m -> m.equals("uploadMultipartPart"), key, times);
  }

  private synchronized void arm(int status, Predicate<String> methods, Predicate<String> keys, int times) {
    this.status = status;
    this.methods = methods;
    this.keys = keys;
    this.served.set(0);
    this.remaining.set(times);
  }

  void disarm() {
    remaining.set(0);
  }

  /** Error responses served since the fault was armed. */
  int served() {
    return served.get();
  }

  @Override
  public Object invoke(Object proxy, Method method, Object[] args) throws Throwable {
    String name = method.getName();
    if (!NOT_REQUESTS.contains(name) && methods.test(name) && keys.test(key(args))
        && remaining.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
      served.incrementAndGet();
      throw new HttpResponseException("injected " + status + " for " + name, null,
          HttpResponse.builder().statusCode(status).message("injected").build());
    }
    try {
      return method.invoke(target, args);
    } catch (InvocationTargetException e) {
      throw e.getCause();
    }
  }

  /** The object key a call is about, where it has one (a multipart upload's), else "". */
  private static String key(Object[] args) {
    if (args != null) {
      for (Object a : args) {
        if (a instanceof MultipartUpload mpu) {
          return mpu.blobName();
        }
      }
    }
    return "";
  }
}

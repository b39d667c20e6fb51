// Differential fuzz generator for SmeltQuant (see docs/QUANT-KERNELS.md).
// Runs ggml's quantize_X (as ggml_quantize_chunk does) and dequantize_row_X on random
// rows of many distributions, with and without importance weights, and writes the
// results in the golden-vector manifest format. Build against a llama.cpp checkout:
//   R=/path/to/llama.cpp/ggml
//   gcc -O3 -ffp-contract=off -DNDEBUG -I$R/src -I$R/include -c $R/src/ggml-quants.c -o quants.o
//   gcc -O3 -ffp-contract=off -DNDEBUG -I$R/src -I$R/include quant-diff-harness.c quants.o -lm -o harness
//   mkdir out && ./harness out [seed] [n_per_row]
//   SMELT_QUANT_DIFF_DIR=$PWD/out swift test --filter DifferentialTests
#define GGML_COMMON_DECL_C
#include "ggml-common.h"
#include "ggml.h"
#include "ggml-quants.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdint.h>

void ggml_abort(const char * file, int line, const char * fmt, ...) { fprintf(stderr, "abort %s:%d\n", file, line); exit(1); }
const char * ggml_type_name(enum ggml_type t) { return "?"; }

typedef struct { const char *name; int id; int bs; int bb;
  size_t (*q)(const float*, void*, int64_t, int64_t, const float*);
  void (*dq)(const void*, float*, int64_t); } T;


#define DQ(f) (void (*)(const void*, float*, int64_t))f
static T types[] = {
 {"q4_0", 2, 32, 18, quantize_q4_0, DQ(dequantize_row_q4_0)},
 {"q4_1", 3, 32, 20, quantize_q4_1, DQ(dequantize_row_q4_1)},
 {"q5_0", 6, 32, 22, quantize_q5_0, DQ(dequantize_row_q5_0)},
 {"q5_1", 7, 32, 24, quantize_q5_1, DQ(dequantize_row_q5_1)},
 {"q8_0", 8, 32, 34, quantize_q8_0, DQ(dequantize_row_q8_0)},
 {"q2_K", 10, 256, 84, quantize_q2_K, DQ(dequantize_row_q2_K)},
 {"q3_K", 11, 256, 110, quantize_q3_K, DQ(dequantize_row_q3_K)},
 {"q4_K", 12, 256, 144, quantize_q4_K, DQ(dequantize_row_q4_K)},
 {"q5_K", 13, 256, 176, quantize_q5_K, DQ(dequantize_row_q5_K)},
 {"q6_K", 14, 256, 210, quantize_q6_K, DQ(dequantize_row_q6_K)},
 {"iq4_nl", 20, 32, 18, quantize_iq4_nl, DQ(dequantize_row_iq4_nl)},
 {"iq4_xs", 23, 256, 136, quantize_iq4_xs, DQ(dequantize_row_iq4_xs)},
 {"tq1_0", 34, 256, 54, quantize_tq1_0, DQ(dequantize_row_tq1_0)},
 {"tq2_0", 35, 256, 66, quantize_tq2_0, DQ(dequantize_row_tq2_0)},
 {"mxfp4", 39, 32, 17, quantize_mxfp4, DQ(dequantize_row_mxfp4)},
 {"nvfp4", 40, 64, 36, quantize_nvfp4, DQ(dequantize_row_nvfp4)},
 {"q1_0", 41, 128, 18, quantize_q1_0, DQ(dequantize_row_q1_0)},
};
#define NT (sizeof(types)/sizeof(types[0]))

size_t ggml_type_size(enum ggml_type t) { for (size_t i=0;i<NT;i++) if (types[i].id==(int)t) return types[i].bb; fprintf(stderr,"type %d\n",t); exit(2); }
int64_t ggml_blck_size(enum ggml_type t) { for (size_t i=0;i<NT;i++) if (types[i].id==(int)t) return types[i].bs; exit(2); }
size_t ggml_row_size(enum ggml_type t, int64_t ne) { return ggml_type_size(t)*ne/ggml_blck_size(t); }

static uint64_t s = 88172645463325252ull;
static uint64_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
static float uni(void) { return (rnd() >> 40) / 16777216.0f; }
static float gauss(void) { float u = uni() + 1e-7f, v = uni(); return sqrtf(-2*logf(u))*cosf(6.2831853f*v); }

static void gen(int kind, float *x, int n) {
  float sc = powf(10.f, (float)((int)(rnd()%13) - 6));
  for (int i = 0; i < n; i++) {
    float v;
    switch (kind) {
      case 0: v = gauss(); break;
      case 1: v = gauss()*sc; break;
      case 2: v = (float)((int)(rnd()%9) - 4); break;               // small integers: exact ties
      case 3: v = (float)((int)(rnd()%33) - 16) * 0.5f; break;       // half steps
      case 4: v = (rnd()%8==0) ? gauss()*10 : 0.f; break;            // sparse
      case 5: { float g = gauss(); v = g*g*g*g*g * sc; } break;      // heavy tail
      case 6: v = uni()*1e-37f * ((rnd()&1)?1:-1); break;           // denormal-ish
      case 7: v = (rnd()%2 ? 1.f : -1.f) * sc; break;                 // +-constant
      case 8: v = fabsf(gauss()) + 0.5f; break;                        // one-signed positive
      case 9: v = gauss()*30000.f; break;                              // large (fp16 edge)
      case 10: v = (i % 32 == 0) ? 100.f : gauss()*0.01f; break;       // block outliers
      case 11: v = (float)(i % 256) / 255.f - 0.5f; break;              // ramp
      case 13: v = gauss()*1e30f; break;                               // overflow to inf in scales
      case 14: v = (i % 16 == 3) ? gauss() : 0.f; break;               // one value per 16
      case 15: v = (i % 64 < 32) ? gauss()*1e-20f : gauss(); break;     // mixed magnitudes
      case 16: v = ((int)(rnd()%3) - 1) * 0.75f; break;                  // ternary
      case 17: v = (rnd()%4==0) ? -0.0f : (float)((int)(rnd()%5)-2)*sc; break;
      case 18: v = (rnd()%97==0) ? NAN : gauss(); break;
      case 19: v = (rnd()%97==0) ? ((rnd()&1) ? INFINITY : -INFINITY) : gauss(); break;
      default: v = 0; break;
    }
    x[i] = v;
  }
}

int main(int argc, char **argv) {
  const char *dir = argv[1];
  if (argc > 2) { s ^= strtoull(argv[2], 0, 10) * 0x9E3779B97F4A7C15ull; for (int i=0;i<10;i++) rnd(); }
  int nkinds = 20, rows = 4, n = argc > 3 ? atoi(argv[3]) : 1024;
  char path[4096];
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  FILE *man = fopen(path, "w");
  fprintf(man, "{\"cases\": [\n");
  int first = 1;
  float *x = malloc(sizeof(float)*rows*n), *w = malloc(sizeof(float)*n), *dq = malloc(sizeof(float)*rows*n);
  void *q = malloc(rows*n*2);
  for (int kind = 0; kind < nkinds; kind++) {
    for (int r = 0; r < rows; r++) gen(r == 3 && kind % 3 == 0 ? 99 : kind, x + r*n, n);
    snprintf(path, sizeof path, "%s/in_%d.f32", dir, kind); FILE *f = fopen(path, "wb"); fwrite(x, 4, rows*n, f); fclose(f);
    for (int wk = 0; wk < 3; wk++) {
      if (wk == 1) for (int i = 0; i < n; i++) { float g = gauss(); w[i] = (rnd()%10==0) ? 0.f : g*g*(1+ (rnd()%50==0 ? 1000.f : 0.f)); }
      if (wk == 2) for (int i = 0; i < n; i++) w[i] = (i/256) % 2 ? 0.f : uni();
      if (wk > 0) { snprintf(path, sizeof path, "%s/qw_%d_%d.f32", dir, kind, wk); f = fopen(path, "wb"); fwrite(w, 4, n, f); fclose(f); }
      for (size_t t = 0; t < NT; t++) {
        size_t rs = ggml_row_size(types[t].id, n);
        memset(q, 0xAB, rows*rs);
        types[t].q(x, q, rows, n, wk ? w : NULL);
        types[t].dq(q, dq, (int64_t)rows*n);
        char e[512], d[512];
        snprintf(e, sizeof e, "exp_%s_%d_%d.bin", types[t].name, kind, wk);
        snprintf(d, sizeof d, "exp_%s_%d_%d.deq.f32", types[t].name, kind, wk);
        snprintf(path, sizeof path, "%s/%s", dir, e); f = fopen(path, "wb"); fwrite(q, 1, rows*rs, f); fclose(f);
        snprintf(path, sizeof path, "%s/%s", dir, d); f = fopen(path, "wb"); fwrite(dq, 4, rows*n, f); fclose(f);
        char imp[256]; if (wk) snprintf(imp, sizeof imp, "\"qw_%d_%d.f32\"", kind, wk); else strcpy(imp, "null");
        fprintf(man, "%s{\"type\": \"%s\", \"ggml_type_id\": %d, \"input\": \"in_%d.f32\", \"rows\": %d, \"n_per_row\": %d, \"importance\": %s, \"expected\": \"%s\", \"dequantized\": \"%s\"}\n",
          first ? "" : ",", types[t].name, types[t].id, kind, rows, n, imp, e, d);
        first = 0;
      }
    }
  }
  fprintf(man, "]}\n"); fclose(man);
  return 0;
}

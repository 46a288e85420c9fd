/* The LSTM recurrence of dlx.models.rnn_native, forward and backward through time, in C.

Why: in torch ops a step of the recurrence is ~9 small ops forward and ~5 backward, each a
few microseconds of dispatch on a [32, 512] tensor, 80 steps a batch. Here a step is one BLAS
call (torch's own MKL sgemm) and one pass over the gates. The rows of a batch are independent
sequences: each thread of torch's OpenMP pool runs the whole time loop on its block of rows
with a one-thread BLAS, and the threads meet only at the end.

Layout (float32, C order, time-major): gates [T, N, 4H] (i, f, g, o; pre-activations in,
activated out), cells [T+1, N, H] (cells[t+1] = c_t; cells[0] = 0 given), tanh_c [T, N, H],
hin: the state step t's recurrent matmul reads (h_{t-1} * mask) at hin + t*step_hin, rows
ld_hin apart (step 0's = 0 given), h [N, H] the last state, mask [N, H] or NULL.
Backward: dh [N, H] the last state's gradient in (scratch after), dc [N, H] scratch, dgates
[T, N, 4H] the pre-activation gradients out.
The embedding's lookup with Keras 1's input dropouts writes x_t into the same buffer as
hin (dlx_embed_fwd), and its backward scatters into the table's gradient (dlx_embed_bwd): in
torch ops that is a gather, two masks, a transposed copy forward and as many passes back.
*/
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef void (*sgemm_t)(const char *, const char *, const int *, const int *, const int *,
                        const float *, const float *, const int *, const float *, const int *,
                        const float *, float *, const int *);
typedef int (*set_threads_t)(int);
static sgemm_t sgemm;
static set_threads_t blas_threads_local; /* MKL_Set_Num_Threads_Local */

void dlx_set_blas(void *gemm, void *threads_local) {
    sgemm = (sgemm_t)gemm;
    blas_threads_local = (set_threads_t)threads_local;
}

/* 16-float vectors (GCC/Clang vector extensions: one AVX-512 register, two AVX2 ones):
   compilers do not vectorize a clamped exp written as scalar code. 16 rather than 8: the
   forward's gates ~0.2 ms faster a batch of the book's 6-14 on a Zen 4, the same bits. */
typedef float vf __attribute__((vector_size(64), aligned(4)));
typedef int32_t vi __attribute__((vector_size(64), aligned(4)));
#define V 16
#define LD(p) (*(const vf *)(p))
#define ST(p) (*(vf *)(p))
static inline vf splat(float x) { return (vf){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }
static inline vf sel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }

/* exp by Cephes' expf polynomial (~1 ulp); a NaN stays NaN (comparisons are false for it) */
static inline vf vexp(vf x) {
    x = sel(x > splat(88.3762626647949f), splat(88.3762626647949f), x);
    x = sel(x < splat(-87.3365447504f), splat(-87.3365447504f), x);
    const vf magic = splat(12582912.0f); /* 1.5 * 2^23: adding and subtracting it rounds */
    vf n = (x * splat(1.44269504088896341f) + magic) - magic;
    vf r = x - n * splat(0.693359375f) + n * splat(2.12194440e-4f);
    vf p = splat(1.9875691500E-4f);
    p = p * r + splat(1.3981999507E-3f);
    p = p * r + splat(8.3334519073E-3f);
    p = p * r + splat(4.1665795894E-2f);
    p = p * r + splat(1.6666665459E-1f);
    p = p * r + splat(5.0000001201E-1f);
    p = p * r * r + r + splat(1.0f);
    vi bits = (__builtin_convertvector(n, vi) + 127) << 23; /* 2^n */
    return p * (vf)bits;
}
static inline vf vsig(vf x) { return splat(1.0f) / (splat(1.0f) + vexp(-x)); }
static inline vf vtanh(vf x) {
    return splat(2.0f) / (splat(1.0f) + vexp(splat(-2.0f) * x)) - splat(1.0f);
}

/* One step of one row, V units: p[0..3] gates (in place), p[4] c_{t-1}, p[5] mask or NULL;
   out p[6] c_t, p[7] tanh(c_t), p[8] the next state */
static inline void fwd_units(float *const *p) {
    vf i = vsig(LD(p[0])), f = vsig(LD(p[1])), g = vtanh(LD(p[2])), o = vsig(LD(p[3]));
    vf c = f * LD(p[4]) + i * g, tc = vtanh(c);
    ST(p[0]) = i, ST(p[1]) = f, ST(p[2]) = g, ST(p[3]) = o, ST(p[6]) = c, ST(p[7]) = tc;
    ST(p[8]) = p[5] ? o * tc * LD(p[5]) : o * tc;
}

/* p[0..3] activated gates, p[4] c_{t-1}, p[5] tanh(c_t), p[6] dh, p[7] dc (in place);
   out p[8..11] the gates' pre-activation gradients */
static inline void bwd_units(float *const *p) {
    const vf one = splat(1.0f);
    vf i = LD(p[0]), f = LD(p[1]), g = LD(p[2]), o = LD(p[3]), tc = LD(p[5]), dh = LD(p[6]);
    vf dc = LD(p[7]) + dh * o * (one - tc * tc);
    ST(p[8]) = dc * g * i * (one - i), ST(p[9]) = dc * LD(p[4]) * f * (one - f);
    ST(p[10]) = dc * i * (one - g * g), ST(p[11]) = dh * tc * o * (one - o);
    ST(p[7]) = dc * f;
}

/* Run `units` over H units in blocks of V; a last block of fewer units goes through zeroed
   scratch (read `nin` pointers, write back the `nout` after them; NULL stays NULL). */
static void over_units(void (*units)(float *const *), float **p, int nin, int nout, int H) {
    int j = 0;
    for (; j + V <= H; j += V) {
        float *q[12];
        for (int k = 0; k < nin + nout; k++) q[k] = p[k] ? p[k] + j : 0;
        units(q);
    }
    if (j == H) return;
    float buf[12][V], *q[12];
    memset(buf, 0, sizeof buf);
    for (int k = 0; k < nin + nout; k++) {
        q[k] = p[k] ? buf[k] : 0;
        if (p[k]) memcpy(buf[k], p[k] + j, sizeof(float) * (H - j));
    }
    units(q);
    for (int k = 0; k < nin + nout; k++)
        if (p[k]) memcpy(p[k] + j, buf[k], sizeof(float) * (H - j));
}

/* `rows` rows of a batch of N (N sets the strides) */
static void fwd_rows(int T, int rows, int N, int H, float *gates, const float *w_hh,
                     float *cells, float *tanh_c, float *hin, long ld_hin, long step_hin,
                     float *h, const float *mask) {
    const int G = 4 * H, ldh = (int)ld_hin;
    const float one = 1.0f;
    for (int t = 0; t < T; t++) {
        float *a = gates + (size_t)t * N * G;
        if (t) /* a += hin_t @ w_hh^T, i.e. column-major a^T += (w_hh^T)^T hin_t^T */
            sgemm("T", "N", &G, &rows, &H, &one, w_hh, &H, hin + t * step_hin, &ldh, &one, a, &G);
        const int last = t + 1 == T;
        float *out = last ? h : hin + (t + 1) * step_hin;
        for (int n = 0; n < rows; n++) {
            float *ai = a + (size_t)n * G;
            float *p[9] = {ai, ai + H, ai + 2 * H, ai + 3 * H, cells + ((size_t)t * N + n) * H,
                           mask && !last ? (float *)mask + (size_t)n * H : 0,
                           cells + ((size_t)(t + 1) * N + n) * H,
                           tanh_c + ((size_t)t * N + n) * H, out + n * (last ? H : ld_hin)};
            over_units(fwd_units, p, 6, 3, H);
        }
    }
}

static void bwd_rows(int T, int rows, int N, int H, const float *gates, const float *w_hh,
                     const float *cells, const float *tanh_c, const float *mask, float *dh,
                     float *dc, float *dgates) {
    const int G = 4 * H;
    const float one = 1.0f, zero = 0.0f;
    memset(dc, 0, sizeof(float) * rows * H);
    for (int t = T - 1; t >= 0; t--) {
        const float *a = gates + (size_t)t * N * G;
        float *d = dgates + (size_t)t * N * G;
        for (int n = 0; n < rows; n++) {
            float *ai = (float *)a + (size_t)n * G, *di = d + (size_t)n * G;
            float *p[12] = {ai, ai + H, ai + 2 * H, ai + 3 * H,
                            (float *)cells + ((size_t)t * N + n) * H,
                            (float *)tanh_c + ((size_t)t * N + n) * H, dh + (size_t)n * H,
                            dc + (size_t)n * H, di, di + H, di + 2 * H, di + 3 * H};
            over_units(bwd_units, p, 8, 4, H);
        }
        if (t) { /* dh_{t-1} = (d_t @ w_hh) * mask */
            sgemm("N", "N", &H, &rows, &G, &one, w_hh, &H, d, &G, &zero, dh, &H);
            if (mask)
                for (size_t k = 0; k < (size_t)rows * H; k++) dh[k] *= mask[k];
        }
    }
}

typedef struct {
    int bwd, T, N, H;
    float *gates, *cells, *tanh_c, *hin, *h, *dh, *dc, *dgates;
    const float *w_hh, *mask;
    long ld_hin, step_hin;
} job_t;

static void run_rows(const job_t *j, int n0, int n1) {
    const int rows = n1 - n0, H = j->H, G = 4 * H;
    if (rows <= 0) return;
    int before = blas_threads_local ? blas_threads_local(1) : 0;
    const float *mask = j->mask ? j->mask + (size_t)n0 * H : 0;
    if (!j->bwd)
        fwd_rows(j->T, rows, j->N, H, j->gates + (size_t)n0 * G, j->w_hh,
                 j->cells + (size_t)n0 * H, j->tanh_c + (size_t)n0 * H, j->hin + n0 * j->ld_hin,
                 j->ld_hin, j->step_hin, j->h + (size_t)n0 * H, mask);
    else
        bwd_rows(j->T, rows, j->N, H, j->gates + (size_t)n0 * G, j->w_hh,
                 j->cells + (size_t)n0 * H, j->tanh_c + (size_t)n0 * H, mask,
                 j->dh + (size_t)n0 * H, j->dc + (size_t)n0 * H, j->dgates + (size_t)n0 * G);
    if (blas_threads_local) blas_threads_local(before);
}

/* The rows split among `threads` of the OpenMP pool torch itself runs on (the loader finds
   torch's libgomp already loaded): its threads are awake when the call comes. */
static void run_job(const job_t *job, int threads) {
    if (threads > job->N) threads = job->N;
    if (threads < 1) threads = 1;
#pragma omp parallel num_threads(threads)
    {
        const long k = omp_get_thread_num(), team = omp_get_num_threads();
        run_rows(job, (int)(job->N * k / team), (int)(job->N * (k + 1) / team));
    }
}

void dlx_lstm_fwd(int threads, int T, int N, int H, float *gates, const float *w_hh,
                  float *cells, float *tanh_c, float *hin, long ld_hin, long step_hin, float *h,
                  const float *mask) {
    job_t job = {0, T, N, H, gates, cells, tanh_c, hin, h, 0, 0, 0, w_hh, mask, ld_hin, step_hin};
    run_job(&job, threads);
}

void dlx_lstm_bwd(int threads, int T, int N, int H, const float *gates, const float *w_hh,
                  const float *cells, const float *tanh_c, const float *mask, float *dh,
                  float *dc, float *dgates) {
    job_t job = {1, T, N, H, (float *)gates, (float *)cells, (float *)tanh_c, 0, 0, dh, dc,
                 dgates, w_hh, mask, 0, 0};
    run_job(&job, threads);
}

/* The embedding's lookup and Keras 1's two input dropouts, written time-major: for ids
   [N, T], x[t, n, :E] = table[id] * keep[id] * mask[n] with id = ids[n, t] (keep [vocab]
   and mask [N, E] may be NULL), rows of x ld apart. The products in torch's order, so the values
   equal `embedding(ids) * keep[ids] * mask` to the bit. Returns 0, or 1 + the position in
   ids of an id outside [0, vocab) (its row of x is left unwritten). */
long dlx_embed_fwd(int threads, int T, int N, int E, const int64_t *ids, long vocab,
                   const float *table, const float *keep, const float *mask, float *x, long ld) {
    long bad = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(max : bad)
    for (long k = 0; k < (long)T * N; k++) {
        const long t = k / N, n = k % N, at = n * T + t;
        const int64_t id = ids[at];
        if (id < 0 || id >= vocab) {
            bad = bad > at + 1 ? bad : at + 1;
            continue;
        }
        const float *row = table + id * E, *m = mask ? mask + n * E : 0;
        float *out = x + k * ld;
        for (int e = 0; e < E; e++) {
            float v = keep ? row[e] * keep[id] : row[e];
            out[e] = m ? v * m[e] : v;
        }
    }
    return bad;
}

/* Its backward, into the table's whole gradient grad [vocab, E]: zeros, then for each id but
   `padding`, in the order of ids as torch's embedding backward adds them (so the sums equal
   torch's to the bit), grad[id] += dx[t, n] * mask[n] * keep[id]; dx [T, N, E]. Each thread
   owns a block of the vocabulary's rows and scans every id: no two threads add to one row.
   fp-contract off: a fused multiply-add would round the sum differently from torch. */
__attribute__((optimize("fp-contract=off"))) void
dlx_embed_bwd(int threads, int T, int N, int E, const int64_t *ids, long vocab, long padding,
              const float *dx, const float *keep, const float *mask, float *grad) {
#pragma omp parallel num_threads(threads)
    {
        const long k = omp_get_thread_num(), team = omp_get_num_threads();
        const long lo = vocab * k / team, hi = vocab * (k + 1) / team;
        memset(grad + lo * E, 0, sizeof(float) * (size_t)(hi - lo) * E);
        for (long n = 0; n < N; n++)
            for (long t = 0; t < T; t++) {
                const int64_t id = ids[n * T + t];
                if (id < lo || id >= hi || id == padding) continue;
                const float *d = dx + (t * N + n) * E, *m = mask ? mask + n * E : 0;
                float *g = grad + id * E;
                for (int e = 0; e < E; e++) { /* one product a statement (clang contracts
                                                 within an expression only) */
                    float v = m ? d[e] * m[e] : d[e];
                    v = keep ? v * keep[id] : v;
                    g[e] += v;
                }
            }
    }
}

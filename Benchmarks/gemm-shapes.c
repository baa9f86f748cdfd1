/*
 * gemm-shapes.c — the GEMM shapes of one BERT-small layer (batch 32, sequence 128) through OpenBLAS:
 * two OpenBLAS threads vs two single-threaded calls on halves (split over M or N), and whether
 * OpenBLAS's results depend on its thread count (they do; see Benchmarks/README.md).
 *
 *     cc -O2 Benchmarks/gemm-shapes.c -o /tmp/gemm-shapes -lopenblas -lpthread && /tmp/gemm-shapes
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <time.h>
void openblas_set_num_threads(int);
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
typedef struct{int M,N,K,ta,tb,lda,ldb,ldc; const float*A,*B; float*C; float beta;} G;
static void run(G*g){cblas_sgemm(CblasRowMajor,g->ta?CblasTrans:CblasNoTrans,g->tb?CblasTrans:CblasNoTrans,g->M,g->N,g->K,1,g->A,g->lda,g->B,g->ldb,g->beta,g->C,g->ldc);}
static void*th(void*p){run(p);return 0;}
// split M in halves (A rows: if ta, columns of A)
static void split(G g){G a=g,b=g;int h=g.M/2; a.M=h; b.M=g.M-h; b.A=g.ta? g.A+h : g.A+(long)h*g.lda; b.C=g.C+(long)h*g.ldc; pthread_t t; pthread_create(&t,0,th,&b); run(&a); pthread_join(t,0);}
static void splitN(G g){G a=g,b=g;int h=g.N/2; a.N=h; b.N=g.N-h; b.B=g.tb? g.B+(long)h*g.ldb : g.B+h; b.C=g.C+h; pthread_t t; pthread_create(&t,0,th,&b); run(&a); pthread_join(t,0);}
int main(){float*A=malloc(4L*4096*2048),*B=malloc(4L*4096*2048),*C=malloc(4L*4096*2048);
for(long i=0;i<4096L*2048;i++){A[i]=(i%7)*0.01f;B[i]=(i%5)*0.01f;C[i]=0;}
struct{const char*n;int M,N,K,ta,tb;} sh[]={{"fwd qkv 4096x1536x512 NT",4096,1536,512,0,1},{"fwd int 4096x2048x512 NT",4096,2048,512,0,1},{"fwd out 4096x512x2048 NT",4096,512,2048,0,1},
 {"dX 4096x512x2048 NN",4096,512,2048,0,0},{"dX 4096x2048x512 NN",4096,2048,512,0,0},{"dW 2048x512x4096 TN",2048,512,4096,1,0},{"dW 512x2048x4096 TN",512,2048,4096,1,0},{"dW 1536x512x4096 TN",1536,512,4096,1,0}};
double tot_ob=0,tot_sp=0;
for(int s=0;s<8;s++){G g={sh[s].M,sh[s].N,sh[s].K,sh[s].ta,sh[s].tb,0,0,0,A,B,C,0};
 g.lda=g.ta?g.M:g.K; g.ldb=g.tb?g.K:g.N; g.ldc=g.N; double fl=2.0*g.M*g.N*g.K; double bo=1e9,bs=1e9,bn=1e9;
 for(int r=0;r<6;r++){openblas_set_num_threads(2);double t=now();run(&g);t=now()-t;if(t<bo)bo=t;
  openblas_set_num_threads(1);t=now();split(g);t=now()-t;if(t<bs)bs=t; t=now();splitN(g);t=now()-t;if(t<bn)bn=t;}
 printf("%-28s openblas2 %.0f  splitM %.0f  splitN %.0f GFLOP/s\n",sh[s].n,fl/bo/1e9,fl/bs/1e9,fl/bn/1e9); tot_ob+=bo; tot_sp+=(bs<bn?bs:bn);}
printf("total openblas2 %.1f ms, best split %.1f ms\n",tot_ob*1e3,tot_sp*1e3);
 /* thread-count dependence: one product at 1 and at 2 threads */
 {int M=4096,N=512,K=512; float*C1=malloc(4L*M*N),*C2=malloc(4L*M*N); long diff=0;
  for(long i=0;i<(long)M*K;i++)A[i]=(float)((i*2654435761u)%1000)/1000.0f-0.5f;
  for(long i=0;i<(long)N*K;i++)B[i]=(float)((i*40503u)%1000)/1000.0f-0.5f;
  openblas_set_num_threads(1);cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,M,N,K,1,A,K,B,K,0,C1,N);
  openblas_set_num_threads(2);cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,M,N,K,1,A,K,B,K,0,C2,N);
  for(long i=0;i<(long)M*N;i++)diff+=C1[i]!=C2[i];
  printf("4096x512x512: %ld of %d elements differ between 1 and 2 OpenBLAS threads\n",diff,M*N);}
}
